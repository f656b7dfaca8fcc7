# The Tandem image: `tandem worker`, `tandem mailer`, `tandem gateway`, `tandem codec-server`
# and every operator command.
#   docker build -t tandem:0.1.0 .     (docker-compose.yml builds it itself)
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TANDEM_LOG_FORMAT=json

WORKDIR /app

# The code finds programs/ and db/migrations/ beside its packages (tandem.settings.PROJECT_ROOT),
# so the project is installed in place (editable) from /app, without the dev extra.
COPY pyproject.toml README.md worker.py mailer.py ./
COPY tandem/ tandem/
COPY workflows/ workflows/
COPY activities/ activities/
COPY starter/ starter/
COPY replies/ replies/
COPY programs/ programs/
COPY db/ db/
# Bytecode made here is all there is: the user below cannot write __pycache__ under /app.
RUN pip install --editable . \
    && python -m compileall -q tandem workflows activities starter replies worker.py mailer.py

# Not root: a fixed numeric id, so runAsNonRoot-style checks can verify it.
RUN groupadd --system --gid 10001 tandem \
    && useradd --system --uid 10001 --gid tandem --home-dir /home/tandem --create-home \
       --shell /usr/sbin/nologin tandem
USER 10001:10001

ENTRYPOINT ["tandem"]
CMD ["--help"]
