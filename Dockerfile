FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/venv PATH=/opt/venv/bin:$PATH
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY api api
COPY daraja daraja
COPY domain domain
COPY khalex_pay khalex_pay
COPY plumbing plumbing
COPY migrations migrations
COPY operations operations
COPY payments payments
COPY store store
COPY workers workers
RUN uv sync --locked --no-dev
ENTRYPOINT ["khalex-pay"]
