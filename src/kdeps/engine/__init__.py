"""Runs requests through a loaded workflow."""

from kdeps.engine.request import RequestData, ResponseData, UploadedFile
from kdeps.engine.runner import Engine

__all__ = ["Engine", "RequestData", "ResponseData", "UploadedFile"]
