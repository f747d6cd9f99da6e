"""Stage II inference: constrained beam search over item unicodes."""

from unger.inference.beam_search import CodeTrie, constrained_beam_search, rank_items

__all__ = ["CodeTrie", "constrained_beam_search", "rank_items"]
