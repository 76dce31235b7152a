import pytest
import torch

from mosslib.model.config import ModelConfig
from mosslib.model.network import MOEDN


@pytest.mark.parametrize("size", [(8, 8), (37, 45), (1, 1), (7, 5), (33, 64)])
def test_output_shape_equals_input_shape_for_odd_sizes(size, tiny_model_config):
    net = MOEDN(tiny_model_config).eval()
    x = torch.rand(2, 3, *size) * 2 - 1
    y = net(x)
    assert y.shape == x.shape
    assert y.abs().max() <= 1.0


def test_default_config_is_the_released_test_configuration():
    cfg = ModelConfig()
    assert (cfg.ngf, cfg.num_blocks, cfg.num_scales, cfg.num_layers, cfg.delta) == (16, 5, 3, 4, 16)
    assert (cfg.memory_items, cfg.memory_decay, cfg.latent_dim) == (512, 0.999, 96)
    net = MOEDN(cfg)
    n = sum(p.numel() for p in net.parameters())
    # the release (2,855,939) has its own encoder-to-decoder "fuse" blocks; ours are a little smaller
    assert cfg.fuse and n == 2_827_507
    assert sum(p.numel() for p in MOEDN(ModelConfig(fuse=False)).parameters()) == 2_702_867  # paper-strict
    z = net.encode(torch.zeros(1, 3, 64, 40))
    assert z.shape == (1, 96, 8, 5)
    assert net.attention(torch.zeros(1, 3, 64, 40)).shape == (1, 512, 8, 5)


@pytest.mark.parametrize("init", ["default", "identity"])
def test_gradients_reach_encoder_and_decoder_not_memory(tiny_model_config, init):
    import dataclasses

    net = MOEDN(dataclasses.replace(tiny_model_config, init=init)).train()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    net(x).mean().backward()
    if init == "identity":  # zero-initialised branches: their second conv gets the first gradient
        assert net.encoder[0].conv2.weight.grad.abs().sum() > 0
        return
    assert net.head.weight.grad.abs().sum() > 0
    assert net.encoder[0].conv1.weight.grad.abs().sum() > 0
    assert net.decoder[-1].conv2.weight.grad.abs().sum() > 0
    assert all(not b.requires_grad for b in net.memory.buffers())


def test_eval_forward_does_not_change_memory_but_training_forward_does(tiny_model_config):
    net = MOEDN(tiny_model_config)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    before = net.memory.items.clone()
    net.eval()(x)
    assert torch.equal(before, net.memory.items)
    net.train()(x)
    assert not torch.equal(before, net.memory.items)


def test_ablation_switches_change_the_graph(tiny_model_config):
    import dataclasses

    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    full = MOEDN(tiny_model_config).eval()
    no_mem = MOEDN(dataclasses.replace(tiny_model_config, use_memory=False)).eval()
    assert no_mem.memory is None and full.memory is not None
    no_mem.load_state_dict({k: v for k, v in full.state_dict().items() if not k.startswith("memory.")})
    # without memory z_hat = z: the decoder sees the encoder output itself
    seen = {}
    no_mem.decoder[0].register_forward_pre_hook(lambda m, a: seen.__setitem__("dec_in", a[0]))
    no_mem(x)
    assert torch.allclose(seen["dec_in"], no_mem.encode(x))
    assert not torch.allclose(full(x), no_mem(x))
    # without skip: tail(g) instead of tail(s - g)
    no_skip = MOEDN(dataclasses.replace(tiny_model_config, use_skip=False)).eval()
    no_skip.load_state_dict(full.state_dict())
    g = {}
    full.decoder[-1].register_forward_hook(lambda m, a, o: g.__setitem__("g", o))
    full(x)
    assert torch.allclose(no_skip(x), torch.tanh(full.tail(g["g"])), atol=1e-6)
    with pytest.raises(RuntimeError):
        no_mem.attention(x)


def test_bad_input_shape_is_a_clear_error(tiny_model_config):
    with pytest.raises(ValueError, match="B, 3, H, W"):
        MOEDN(tiny_model_config)(torch.zeros(3, 16, 16))


def test_identity_init_starts_close_to_the_input(tiny_model_config):
    import dataclasses

    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16) * 1.6 - 0.8
    ident = MOEDN(tiny_model_config).eval()
    default = MOEDN(dataclasses.replace(tiny_model_config, init="default")).eval()
    err_ident = (ident(x) - x).abs().mean()
    err_default = (default(x) - x).abs().mean()
    assert err_ident < 0.5 * err_default
    # residual branches start at zero: each layer is its shortcut
    layer = ident.encoder[0]
    assert torch.count_nonzero(layer.conv2.weight) == 0
    with pytest.raises(ValueError, match="init"):
        dataclasses.replace(tiny_model_config, init="xavier")


def test_fusion_starts_closed_and_opens_with_training(tiny_model_config):
    """With zero-initialised fusion convs, the fused network computes what the paper-strict one does."""
    import dataclasses

    torch.manual_seed(0)
    strict = MOEDN(dataclasses.replace(tiny_model_config, fuse=False, init="default")).eval()
    fused = MOEDN(dataclasses.replace(tiny_model_config, fuse=True, init="default")).eval()
    missing, unexpected = fused.load_state_dict(strict.state_dict(), strict=False)
    assert missing and all(k.startswith("fuse.") for k in missing) and not unexpected
    x = torch.rand(2, 3, 24, 16) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(fused(x), strict(x), atol=1e-6)
    fused.train()
    fused(x).square().mean().backward()
    assert all(conv.weight.grad.abs().sum() > 0 for conv in fused.fuse)  # every fusion path gets a gradient


def test_checkpoints_from_before_fusion_load_paper_strict(tmp_path, tiny_model_config):
    import dataclasses

    from mosslib.method.checkpoint import load_model, save_model
    from mosslib.model.config import to_dict

    net = MOEDN(dataclasses.replace(tiny_model_config, fuse=False))
    old = to_dict(net.cfg)
    del old["fuse"]  # as written by mosslib before ModelConfig.fuse existed
    save_model(net, tmp_path / "old.pt", config=old)
    assert load_model(tmp_path / "old.pt").fuse is None
