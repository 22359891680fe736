# Dockyard's server and workers, in one image (docs/deploy-server.md).
#
#     docker build -t dockyard:local .
#     docker run --rm -p 127.0.0.1:4200:4200 -e DOCKYARD_SERVER_API_KEY=... dockyard:local
#
# The default command is `dockyard server start`, listening on 0.0.0.0:4200 inside the
# container: it refuses to start without DOCKYARD_SERVER_API_KEY (the security baseline).
# `dockyard worker start ...` runs a worker from the same image.
#
# BASE_IMAGE: any Debian-based image with Python 3.11 or newer and pip. Where no registry is
# reachable, scripts/build-base-image.sh makes one from a Debian mirror:
#     docker build --build-arg BASE_IMAGE=dockyard-test/python:3.11 -t dockyard:local .
ARG BASE_IMAGE=python:3.11-slim

# Stage 1: a wheel of this source tree.
FROM ${BASE_IMAGE} AS wheel
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /build
COPY pyproject.toml ./
# the build backend in a layer of its own, kept while only the code changes
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires']))" >build-requirements.txt \
 && python -m pip install --no-cache-dir -r build-requirements.txt
COPY README.md ./
COPY src ./src
RUN python -m pip wheel --no-deps --no-build-isolation --no-cache-dir -w /wheels .

# Stage 2: Dockyard installed with PostgreSQL's driver, run as an unprivileged user.
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# the dependencies first, read from pyproject.toml alone: this layer (most of the image's
# build time) is kept while only the code changes
COPY pyproject.toml /tmp/dockyard/
RUN python -c "import tomllib; p = tomllib.load(open('/tmp/dockyard/pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['postgres']))" >/tmp/dockyard/requirements.txt \
 && python -m pip install --no-cache-dir -r /tmp/dockyard/requirements.txt \
 && rm -rf /tmp/dockyard
COPY --from=wheel /wheels/ /tmp/dockyard/
RUN python -m pip install --no-cache-dir "$(echo /tmp/dockyard/dockyard-*.whl)[postgres]" \
 && rm -rf /tmp/dockyard \
 && groupadd --system --gid 10001 dockyard \
 && useradd --system --uid 10001 --gid dockyard --create-home --home-dir /var/lib/dockyard \
      --shell /usr/sbin/nologin dockyard
# DOCKYARD_HOME holds the SQLite database (when DOCKYARD_DATABASE_URL is unset) and the key
# secrets are encrypted with (when DOCKYARD_SERVER_ENCRYPTION_KEY is unset): keep it on a volume
ENV DOCKYARD_HOME=/var/lib/dockyard DOCKYARD_SERVER_HOST=0.0.0.0 DOCKYARD_SERVER_PORT=4200
WORKDIR /var/lib/dockyard
USER dockyard
EXPOSE 4200
CMD ["dockyard", "server", "start"]
