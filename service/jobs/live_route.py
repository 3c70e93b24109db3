"""LiveReadRoute: the route class of the polled reads, which validates a request in one step.

Dashboards poll GET /jobs/{id} and its series many times a second, and most answers are a 304
from memory, so FastAPI's own handler, which validates each parameter on its own and looks each
one's type over again on every request, costs more than the answer itself. This route validates
the same declared parameters (the endpoint's signature: path, query and header, with their
constraints) in one pydantic model built once from them, resolves the dependencies that take
nothing but the request, and calls the endpoint. Whatever that model refuses goes to FastAPI's
own handler, so every error is the one FastAPI gives (a 422 problem naming each bad field), and
the route's document is FastAPI's own.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import fastapi.routing
from fastapi import Request, Response
from fastapi._compat import ModelField
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class LiveReadRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        standard = super().get_route_handler()
        # Included in a router, the route is served with the dependant of its inclusion (the
        # includes' own dependencies added), which FastAPI sets while it builds the handler.
        context = getattr(fastapi.routing, "_effective_route_context_var", None)
        included = None if context is None else context.get()
        dependant = self.dependant
        if included is not None and included.original_route is self:
            dependant = included.dependant
        fast = _fast_handler(self, dependant, standard)
        return standard if fast is None else fast


def _fast_handler(route: APIRoute, dependant: Dependant, standard: Handler) -> Handler | None:
    """The one-step handler, or None if the endpoint needs more than it handles (a body,
    cookies, a dependency with parameters of its own, a sync endpoint)."""
    extras = (dependant.cookie_params, dependant.body_params, dependant.security_scopes_param_name)
    if any(extras) or not _is_async(route.endpoint):
        return None
    requested: list[tuple[str, Callable[[Request], Coroutine[Any, Any, Any]]]] = []
    for sub in dependant.dependencies:
        simple = sub.request_param_name is not None and not (
            sub.path_params or sub.query_params or sub.header_params or sub.cookie_params
            or sub.body_params or sub.dependencies
        )  # fmt: skip
        if not simple or sub.name is None or sub.call is None or not _is_async(sub.call):
            return None
        requested.append((sub.name, sub.call))
    fields = {
        field.name: (field.field_info.annotation, field.field_info)
        for field in (*dependant.path_params, *dependant.query_params, *dependant.header_params)
    }
    by_name = ConfigDict(validate_by_name=True, validate_by_alias=False)
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        f"{route.name}_parameters", __config__=by_name, **fields
    )
    validate = model.__pydantic_validator__.validate_python
    # (the parameter's name, what the request calls it)
    in_path = [(field.name, field.alias) for field in dependant.path_params]
    in_query = [(field.name, field.alias) for field in dependant.query_params]
    in_headers = [(field.name, _header_name(field)) for field in dependant.header_params]
    endpoint = route.endpoint

    async def handler(request: Request) -> Response:
        given: dict[str, Any] = {}
        path_params = request.path_params
        for name, alias in in_path:
            given[name] = path_params[alias]
        if in_query:
            query = request.query_params
            for name, alias in in_query:
                if (value := query.get(alias)) is not None:
                    given[name] = value
        headers = request.headers
        for name, alias in in_headers:
            if (value := headers.get(alias)) is not None:
                given[name] = value
        try:
            values = dict(validate(given).__dict__)
        except ValidationError:
            return await standard(request)  # FastAPI's own answer to what is wrong
        for name, call in requested:
            values[name] = await call(request)
        response: Response = await endpoint(**values)
        return response

    return handler


def _header_name(field: ModelField) -> str:
    """The request header a header parameter reads: its name with hyphens for underscores,
    unless it has an alias of its own or says not to (as FastAPI reads it)."""
    converts = getattr(field.field_info, "convert_underscores", True)
    return field.alias.replace("_", "-") if converts and field.alias == field.name else field.alias


def _is_async(call: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(call)
