"""Token accounting: model context windows, prices and cost."""

from ._catalog import PRICES_AS_OF, ModelInfo, cost_of, model_info, register_model_info, with_cost

__all__ = ["PRICES_AS_OF", "ModelInfo", "cost_of", "model_info", "register_model_info", "with_cost"]
