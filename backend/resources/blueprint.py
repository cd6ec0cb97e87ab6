"""The Blueprint every resource uses: flask-smorest's, with a JSON body parser that turns every
unreadable body into the documented 400 instead of a server error."""

from __future__ import annotations

import json
from typing import Any

import flask
import flask_smorest
from webargs.flaskparser import FlaskParser


class BodyParser(FlaskParser):
    """webargs' Flask parser; a body nested deeper than Python's JSON decoder can recurse is
    invalid JSON too (it raised RecursionError, a 500)."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            # A non-empty `doc`: webargs reads an empty one as "no body".
            raise json.JSONDecodeError("JSON nested too deeply", doc="<body>", pos=0) from None


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = BodyParser()
