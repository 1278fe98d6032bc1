"""What the Open Inference Protocol's two sides share: the REST routes (``webapp.endpoints.serving``)
and the ``inference.GRPCInferenceService`` (``webapp.serving.open_inference_grpc``) describe servers
and models with these, so that both say the same thing.

Choices the protocol leaves open, made as Triton and KServe make them:

- model metadata declares every output infer returns: ``probabilities`` and ``classes`` of a
  classifier (or ``values``), then the graph's own outputs (``prediction`` of the zoo models), each
  with the dtype and shape the version's warm-up forward pass produced;
- class labels travel in the metadata's ``properties`` (the protocol's ``map<string, string>`` of
  model properties): ``label_names`` is a JSON array, index ``i`` naming class ``i`` of ``classes``
  and of the columns of ``probabilities``;
- server metadata lists the extensions this server truly implements (``binary_tensor_data``).
"""

from __future__ import annotations

import functools
import json

from webapp.serving.inputs import DTYPE_TO_V2

SERVER_NAME = "netforge"
EXTENSIONS = ["binary_tensor_data"]
V2_DATATYPE_OF = {"float32": "FP32", "float64": "FP64", "int32": "INT32", "int64": "INT64", "bool": "BOOL"}


@functools.cache  # the installed package's metadata, read from disk once
def server_version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("netforge")
    except PackageNotFoundError:
        return "unknown"


def server_metadata() -> dict:
    return {"name": SERVER_NAME, "version": server_version(), "extensions": list(EXTENSIONS)}


def v2_datatype(dtype_name: str) -> str:
    return V2_DATATYPE_OF.get(dtype_name, dtype_name.upper())


def model_metadata(name: str, route, loaded) -> dict:
    """``GET /v2/models/<name>`` and ``ModelMetadata``: inputs, every output infer returns, the
    ready versions, and the class labels in ``properties``."""
    inputs = [{"name": spec.name, "datatype": DTYPE_TO_V2[spec.dtype],
               "shape": [-1 if size is None else size for size in spec.shape] or [-1]}
              for spec in loaded.specs]
    outputs = [{"name": output, "datatype": v2_datatype(dtype), "shape": [-1, *shape]}
               for output, (dtype, shape) in loaded.outputs.items()]
    labels = loaded.schema.get("label_names")
    properties = {"task": str(loaded.schema.get("task") or "")}
    if labels:
        properties["label_names"] = json.dumps(list(labels))
    return {
        "name": name,
        "versions": [str(number) for number, target in sorted(route.versions.items()) if target.state == "ready"],
        "platform": SERVER_NAME,
        "inputs": inputs,
        "outputs": outputs,
        "properties": properties,
    }
