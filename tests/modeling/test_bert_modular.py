"""A BERT encoder under the Ettin head, in the modular layout, scores identically in both engines."""

from __future__ import annotations

import numpy as np
import torch

from ettin_rerank import Reranker
from ettin_rerank.modeling.bert import BertConfig, BertModel
from ettin_rerank.modeling.crossencoder import CrossEncoderModel
from ettin_rerank.modeling.heads import ModularHead
from ettin_rerank.modeling.loading import save_modular
from reference_models import mixed_pairs


def test_bert_encoder_with_ettin_head_round_trips_through_sentence_transformers(bert_tokenizer_dir, tmp_path):
    from sentence_transformers import CrossEncoder

    config = BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
    encoder = BertModel(config)
    encoder.init_weights(torch.Generator().manual_seed(1))
    with torch.no_grad():  # larger weights than BERT's init so pairs score visibly apart
        for param in encoder.parameters():
            if param.ndim == 2:
                param.mul_(8)
    head = ModularHead.ettin(config.hidden_size)
    model = CrossEncoderModel(encoder, head)
    out = save_modular(model, bert_tokenizer_dir, tmp_path / "bert-ettin", max_length=512)

    pairs = mixed_pairs()
    ours = Reranker.from_pretrained(out)
    assert ours.architecture == "BertModel + modular head" and ours.max_length == 512
    theirs = CrossEncoder(str(out), activation_fn=torch.nn.Identity()).predict(pairs)
    assert np.ptp(theirs) > 1e-2
    np.testing.assert_allclose(ours.predict(pairs), theirs, atol=1e-4, rtol=0)
