"""The yardstick: a bare FastAPI endpoint served by the same uvicorn setup as Broadsheet."""

from __future__ import annotations

from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    return app
