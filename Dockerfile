# The operator image: small, non-root, and the compiled placement core checked inside it.
#
# The build context carries the install tree of the project's compiled wheel (`pip wheel .` then
# `pip install --target build/image/site`), so the build itself fetches nothing and needs no
# compiler: `make image` runs it with buildah (`--network none --pull=never`) on a local Debian
# base made by debootstrap. The base is an argument; any Python 3.11 image works:
#   make image     # local base, no registry; leaves the context in build/image
#   docker build --build-arg BASE=python:3.11-slim .   # works too, once make image made build/image
ARG BASE=python:3.11-slim
FROM ${BASE}
ARG CONTEXT=build/image
COPY ${CONTEXT}/site /opt/suanli/site
ENV PYTHONPATH=/opt/suanli/site PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Fails the build when the placement core is the pure-Python reference instead of the compiled one.
RUN python3 -c "import sys, suanli.placement._core as c; sys.exit(0 if c.__file__.endswith('.so') else 'placement core not compiled: ' + c.__file__)"
# A name for uid 65532: kopf asks getpass.getuser() for its identity, which fails for a uid that
# /etc/passwd does not know (a Debian or python:*-slim base has none for it).
RUN echo 'suanli:x:65532:65532:suanli:/nonexistent:/usr/sbin/nologin' >> /etc/passwd && \
    echo 'suanli:x:65532:' >> /etc/group
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["python3", "-m", "suanli.controller"]
