# A container for running untrusted tasks (see README, "The code interpreter"). Not built in CI (no docker there).
#   docker build -t inkagent .
#   docker run --rm -it --network none inkagent run configs/demo.yaml --task "What is 17 * 23?"
FROM python:3.11-slim
RUN useradd --create-home --uid 1000 app
WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir torch --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir /app \
    && mkdir -p /app/runs && chown app /app/runs
USER app
ENV HOME=/home/app
ENTRYPOINT ["inkagent"]
