# The operator image. Built with a C compiler and Cython in a build stage: the placement core is
# compiled, never replaced by the pure-Python reference.
#   docker build -t ghcr.io/suanli/suanli:0.1.0 .
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY setup.py pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --uid 65532 --no-create-home suanli
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 65532
EXPOSE 8080 9090
ENTRYPOINT ["python", "-m", "suanli.controller"]
