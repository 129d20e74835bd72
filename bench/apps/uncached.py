"""Baseline: the workload's endpoints with no cache."""

from fastapi import Depends, FastAPI, Request, Response

from apps.common import RUNS, Item, control_routes, current_user, load_page, new_session_id, who

app = FastAPI()
control_routes(app, "fastapi-uncached")


@app.get("/items")
async def items(page: int = 1) -> list[Item]:
    return await load_page(page)


@app.get("/me/dep")
async def me_dep(v: int = 0, user: str = Depends(current_user)) -> dict:
    RUNS["me_dep"] += 1
    return {"user": user, "v": v}


@app.get("/me/req")
async def me_req(request: Request, v: int = 0) -> dict:
    RUNS["me_req"] += 1
    return {"user": who(request.headers), "v": v}


@app.get("/cookie")
async def cookie(response: Response, v: int = 0) -> dict:
    RUNS["cookie"] += 1
    sid = new_session_id()
    response.set_cookie("sid", sid)
    return {"sid": sid, "v": v}
