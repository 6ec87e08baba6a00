# syntax=docker/dockerfile:1
# The production-policy image: the webhook, the controller and the chart's hooks all run it.
# tests/unit/test_dockerfile.py lints this file with hadolint and replays the build stage's steps
# in a clean virtualenv, then runs `production-policy --version`.
# Without a registry, `make image` (devtools/image.py) passes a Python 3.11 base built from Debian's
# packages and OFFLINE_WHEELS=1 with the locked wheels in .wheelhouse/: the build needs no network.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: the wheel, then a virtualenv holding it and its locked dependencies -------------
FROM ${PYTHON_IMAGE} AS build
ARG OFFLINE_WHEELS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# .wheelhouse/ is absent unless prepared; the wildcard then copies only requirements.lock.
COPY requirements.lock .wheelhouse* /wheelhouse/
COPY pyproject.toml requirements.lock README.md ./
COPY operator/ operator/
# The venv's own pip builds and installs: Debian's python3 has no pip outside a venv.
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip wheel --no-cache-dir ${OFFLINE_WHEELS:+--no-index --find-links=/wheelhouse} \
       --no-deps --wheel-dir /wheels .
# requirements.lock pins the dev tools too; as constraints it pins every runtime dependency of
# the wheel to its locked version without installing pytest, mypy and the like into the image.
# Then pip and setuptools leave the venv (23 MB): nothing installs anything at run time.
RUN /opt/venv/bin/pip install --no-cache-dir ${OFFLINE_WHEELS:+--no-index --find-links=/wheelhouse} \
       --constraint requirements.lock /wheels/*.whl \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall --yes --quiet pip setuptools

# ---- runtime: no compiler, no pip cache, no source tree ------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="production-policy" \
      org.opencontainers.image.description="Kubernetes operator: default probes and resources, validation, config rollouts" \
      org.opencontainers.image.licenses="Apache-2.0"
# A named user helps tools that look up the uid; the chart also sets runAsUser 65532.
RUN groupadd --system --gid 65532 nonroot \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin nonroot
COPY --from=build /opt/venv /opt/venv
# The root filesystem is read-only in the cluster; /tmp is the one writable mount (and HOME).
ENV PATH=/opt/venv/bin:$PATH HOME=/tmp PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
ENTRYPOINT ["production-policy"]
CMD ["--help"]
