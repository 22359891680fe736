"""Secret values stay secret: no answer but a worker's claim (and the engine holding a run's
lease) shows a value its pool's template marks ``"format": "password"``, or the credentials
of a git URL. On SQLite and PostgreSQL, over the API and the CLI."""

from __future__ import annotations

import json

SECRET = "s3cret-value-0042"
TOKEN = "ghp_token0042"
REPOSITORY = f"https://bot:{TOKEN}@git.example.test/org/repo.git"


def _setup(http) -> tuple[str, dict]:
    template = http.get("/worker-types/docker").json()["base_job_template"]
    credentials_spec = template["variables"]["properties"]["registry_credentials"]
    assert credentials_spec["properties"]["password"]["format"] == "password"
    template["variables"]["properties"]["registry_credentials"]["default"] = {
        "username": "ci",
        "password": SECRET + "-default",
    }
    body = {"name": "pool", "type": "docker", "base_job_template": template}
    assert http.post("/work-pools", json=body).status_code == 201
    credentials = {"username": "bot", "password": SECRET}
    deployment = http.post(
        "/deployments",
        json={
            "flow_name": "f",
            "name": "d",
            "work_pool_name": "pool",
            "job_variables": {"image": "python:3.11", "registry_credentials": credentials},
            "pull_steps": [{"git_clone": {"repository": REPOSITORY, "branch": "main"}}],
        },
    )
    assert deployment.status_code == 200, deployment.text
    run = http.post(
        f"/deployments/{deployment.json()['id']}/runs",
        json={
            "job_variables": {
                "registry_credentials": {"username": "bot", "password": SECRET + "-run"}
            }
        },
    )
    assert run.status_code == 201, run.text
    return deployment.json()["id"], run.json()


def _hidden(text: str) -> None:
    assert SECRET not in text and TOKEN not in text, text


def test_secret_values_are_masked_in_every_answer_but_a_claim(server) -> None:
    with server.http() as http:
        deployment_id, run = _setup(http)
        _hidden(json.dumps(run))
        for path in (
            f"/deployments/{deployment_id}",
            "/deployments",
            "/deployments/name/f/d",
            f"/flow-runs/{run['id']}",
            "/flow-runs",
            "/work-pools/pool",
            "/work-pools",
            "/work-pools/pool/preview?deployment=f/d",
        ):
            answer = http.get(path)
            assert answer.status_code == 200, (path, answer.text)
            _hidden(answer.text)
        shown = http.get(f"/deployments/{deployment_id}").json()
        assert shown["pull_steps"][0]["git_clone"]["repository"] == (
            "https://***@git.example.test/org/repo.git"
        )
        assert shown["job_variables"]["registry_credentials"]["username"] == "bot"

        claim = {"worker_name": "w", "work_pool_name": "pool"}
        (claimed,) = http.post("/workers/claim", json=claim).json()
        assert claimed["job_variables"]["registry_credentials"]["password"] == SECRET + "-run"
        _hidden(json.dumps(claimed["flow_run"]))

        token = claimed["lease_token"]
        stranger = http.post(f"/flow-runs/{run['id']}/deployment", json={"lease_token": None})
        assert stranger.status_code in (409, 422)
        engine = http.post(f"/flow-runs/{run['id']}/deployment", json={"lease_token": token})
        assert engine.status_code == 200
        assert engine.json()["pull_steps"][0]["git_clone"]["repository"] == REPOSITORY


def test_the_cli_shows_no_secret(server) -> None:
    with server.http() as http:
        _, run = _setup(http)
    for args in (
        ("deployment", "inspect", "f/d"),
        ("deployment", "inspect", "f/d", "--json"),
        ("flow-run", "inspect", run["id"]),
        ("flow-run", "inspect", run["id"], "--json"),
        ("work-pool", "inspect", "pool"),
        ("work-pool", "preview", "pool", "--deployment", "f/d"),
    ):
        shown = server.cli(*args)
        assert shown.returncode == 0, (args, shown.stderr)
        _hidden(shown.stdout + shown.stderr)


def test_a_masked_answer_sent_back_keeps_its_secrets(server) -> None:
    """Read, edit, save: the mask is never stored in place of the secret it hides."""
    with server.http() as http:
        deployment_id, _ = _setup(http)
        shown = http.get(f"/deployments/{deployment_id}").json()
        body = {
            key: shown[key]
            for key in ("flow_name", "name", "work_pool_name", "job_variables", "pull_steps")
        }
        body["description"] = "edited"
        assert http.post("/deployments", json=body).status_code == 200
        pool = http.get("/work-pools/pool").json()
        template = pool["base_job_template"]
        assert (
            http.patch("/work-pools/pool", json={"base_job_template": template}).status_code == 200
        )

        fresh = http.post(f"/deployments/{deployment_id}/runs", json={}).json()
        claim = {"worker_name": "w", "work_pool_name": "pool", "limit": 5}
        claimed = {c["flow_run"]["id"]: c for c in http.post("/workers/claim", json=claim).json()}
        config = claimed[fresh["id"]]["job_variables"]
        assert config["registry_credentials"]["password"] == SECRET
        stored = http.post(
            f"/flow-runs/{fresh['id']}/deployment",
            json={"lease_token": claimed[fresh["id"]]["lease_token"]},
        ).json()
        assert stored["pull_steps"][0]["git_clone"]["repository"] == REPOSITORY
        defaults = claimed[fresh["id"]]["base_job_template"]["variables"]["properties"]
        assert defaults["registry_credentials"]["default"]["password"] == SECRET + "-default"

        masked = {"registry_credentials": {"username": "bot", "password": "••••••"}}
        refused = http.post(f"/deployments/{deployment_id}/runs", json={"job_variables": masked})
        assert refused.status_code == 422
        assert refused.json()["field"] == "job_variables.registry_credentials.password"
