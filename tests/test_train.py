"""Training inside TVM: one step against an independent numpy step, optimizers, loss falling on real data, resume
after a simulated kill, one-line user errors."""

from __future__ import annotations


import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from syno_tvm.errors import SynoError
from syno_tvm.ir.library import named
from syno_tvm.relax.models import resnet18_cifar, small_cnn
from syno_tvm.train import data
from syno_tvm.train.program import build_graph
from syno_tvm.train.loop import Config, Trainer, train
from syno_tvm.train.optim import SGD, Adam, Schedule


# ---- an independent numpy reference of small_cnn's training step ----------------------------------------------------
def _im2col(x: np.ndarray, k: int) -> np.ndarray:
    n, c, h, w = x.shape
    p = np.pad(x, ((0, 0), (0, 0), (k // 2, k // 2), (k // 2, k // 2)))
    cols = np.stack([p[:, :, a:a + h, b:b + w] for a in range(k) for b in range(k)], axis=2)  # n,c,k*k,h,w
    return cols.reshape(n, c * k * k, h, w)


def _conv(x, w):
    o, c, k, _ = w.shape
    return np.einsum("nphw,op->nohw", _im2col(x, k), w.reshape(o, -1))


def _conv_grads(x, w, dy):
    o, c, k, _ = w.shape
    cols = _im2col(x, k)
    dw = np.einsum("nphw,nohw->op", cols, dy).reshape(w.shape)
    # dx = conv of dy with the flipped, transposed kernel (same padding, stride 1)
    dx = _conv(dy, np.flip(w, axis=(2, 3)).transpose(1, 0, 2, 3))
    return dx, dw


def _numpy_step(p: dict, x: np.ndarray, labels: np.ndarray, lr: float, mom: float, wd: float, eps: float):
    """Forward, backward and SGD of conv(+b) > relu > conv > BN(train) > relu > GAP > Gemm > CE, by hand."""
    w1, b1, w2, g, beta, fw, fb = (p[k].astype(np.float64) for k in ("w1", "b1", "w2", "g", "beta", "fw", "fb"))
    n = len(x)
    z1 = _conv(x, w1) + b1[None, :, None, None]
    a1 = np.maximum(z1, 0)
    z2 = _conv(a1, w2)
    mu, var = z2.mean(axis=(0, 2, 3)), z2.var(axis=(0, 2, 3))
    xhat = (z2 - mu[None, :, None, None]) / np.sqrt(var + eps)[None, :, None, None]
    bn = xhat * g[None, :, None, None] + beta[None, :, None, None]
    a2 = np.maximum(bn, 0)
    pooled = a2.mean(axis=(2, 3))
    logits = pooled @ fw.T + fb
    z = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    loss = -np.log(prob[np.arange(n), labels]).mean()
    dlogits = prob.copy()
    dlogits[np.arange(n), labels] -= 1
    dlogits /= n
    grads = {"fw": dlogits.T @ pooled, "fb": dlogits.sum(axis=0)}
    dpooled = dlogits @ fw
    da2 = np.broadcast_to(dpooled[:, :, None, None] / (a2.shape[2] * a2.shape[3]), a2.shape)
    dbn = da2 * (bn > 0)
    grads["g"], grads["beta"] = (dbn * xhat).sum(axis=(0, 2, 3)), dbn.sum(axis=(0, 2, 3))
    dxhat = dbn * g[None, :, None, None]
    dz2 = (dxhat - dxhat.mean(axis=(0, 2, 3), keepdims=True)
           - xhat * (dxhat * xhat).mean(axis=(0, 2, 3), keepdims=True)) / np.sqrt(var + eps)[None, :, None, None]
    da1, grads["w2"] = _conv_grads(a1, w2, dz2)
    dz1 = da1 * (z1 > 0)
    _, grads["w1"] = _conv_grads(x, w1, dz1)
    grads["b1"] = dz1.sum(axis=(0, 2, 3))
    new = {}
    for k, gk in grads.items():
        v = gk + wd * p[k]            # momentum buffer starts at zero: v = g + wd * p
        new[k] = p[k] - lr * v
    return loss, new, mu, var


def test_one_step_matches_numpy_reference():
    model = small_cnn(batch=4, width=3, seed=1)
    graph = build_graph(model, optimizer=SGD(momentum=0.9, weight_decay=1e-3))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    # the reference's names, in program order, against the ONNX initializer names (conv_w appears twice)
    order = ["w1", "b1", "w2", "g", "beta", "fw", "fb"]
    onnx_names = [s.onnx_name for s in graph.params]
    assert [n.rsplit("_", 1)[0] for n in onnx_names] == ["conv_w", "conv_b", "conv_w", "bn_gamma", "bn_beta",
                                                          "fc_w", "fc_b"]
    p = {k: inits[n].astype(np.float64) for k, n in zip(order, onnx_names)}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    labels = np.array([1, 7, 3, 1])
    trainer = Trainer(graph, threads=1)
    lr = 0.1
    loss, logits = trainer.step(x, labels, lr)
    ref_loss, ref_new, mu, var = _numpy_step(p, x.astype(np.float64), labels, lr, 0.9, 1e-3, 1e-5)
    assert abs(loss - ref_loss) < 1e-4
    for k, n in zip(order, onnx_names):
        got = trainer.params[onnx_names.index(n)].numpy()
        np.testing.assert_allclose(got, ref_new[k], rtol=1e-4, atol=1e-4, err_msg=k)
        assert not np.allclose(got, p[k], atol=1e-6), f"{k} did not move"
    # running statistics: momentum 0.9 (ONNX), population variance
    st = {s.onnx_name.rsplit("_", 1)[0]: t.numpy() for s, t in zip(graph.states, trainer.states)}
    old = {s.onnx_name.rsplit("_", 1)[0]: s.init for s in graph.states}
    np.testing.assert_allclose(st["bn_mean"], 0.9 * old["bn_mean"] + 0.1 * mu, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(st["bn_var"], 0.9 * old["bn_var"] + 0.1 * var, rtol=1e-4, atol=1e-5)


def test_conv2d_swap_trains_like_the_original():
    """conv2d swapped in (call_tir_with_grad + derived backward) is the same function with the same start: one
    step gives the same loss and the same updated weights as Relax's own conv2d gradient."""
    model = small_cnn(batch=4, width=3, seed=2)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    labels = np.array([0, 2, 4, 6])
    results = []
    for op in (None, named("conv2d")):
        graph = build_graph(model, op)
        trainer = Trainer(graph, threads=1)
        losses = [trainer.step(x, labels, 0.05)[0] for _ in range(2)]
        results.append((losses, [t.numpy() for t in trainer.params], graph))
    (l0, p0, g0), (l1, p1, g1) = results
    assert [d.action for d in g1.decisions] == ["swap", "swap"]
    np.testing.assert_allclose(l0, l1, rtol=1e-5)
    for a, b in zip(p0, p1):
        np.testing.assert_allclose(a.reshape(-1), b.reshape(-1), rtol=1e-4, atol=1e-5)


def _one_conv_classifier(batch: int) -> onnx.ModelProto:
    """The smallest trainable model with a conv to swap: a 3 -> 10 channel conv whose globally pooled channels are
    the logits, 8x8 images (14 tuning tasks for its training step, small-cnn's has 57)."""
    from onnx import TensorProto, helper

    w = numpy_helper.from_array((np.random.default_rng(3).standard_normal((10, 3, 3, 3)) * 0.5).astype(np.float32),
                                "conv_w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "conv_w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         helper.make_node("GlobalAveragePool", ["c"], ["p"]), helper.make_node("Flatten", ["p"], ["logits"])],
        "one_conv_classifier", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 10])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("which", ["one-conv", pytest.param("small-cnn", marks=pytest.mark.slow)])
def test_tuned_training_step_matches_the_untuned_one(tmp_path, which):
    """``tune_trials``: every kernel of the step (the swapped operator's derived backward included) is tuned by
    MetaSchedule; the tuned step computes the same update, and a second build reuses the database.  MetaSchedule
    spends about 2.5 s per task here whatever its size, so the default run tunes a one-conv classifier's step (14
    tasks, ~40 s); ``-m slow`` tunes small-cnn's (57 tasks, conv + bias, BatchNorm, two swapped convs: ~2.5 min)."""
    if which == "small-cnn":
        model, shape, min_tasks = small_cnn(batch=4, width=3, seed=3), (4, 3, 32, 32), 50
    else:
        model, shape, min_tasks = _one_conv_classifier(batch=4), (4, 3, 8, 8), 10
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(np.float32)
    labels = np.array([5, 1, 0, 9])
    graph = build_graph(model, named("conv2d"))
    assert "swap" in [d.action for d in graph.decisions]
    plain = Trainer(graph, threads=1)
    tuned = Trainer(graph, threads=1, tune_trials=1, tune_dir=tmp_path / "db")
    assert tuned.tuning.new_trials > 0 and len(tuned.tuning.tasks) > min_tasks
    names = [t.name for t in tuned.tuning.tasks]
    assert any(n.startswith("syno_grad_") for n in names) and all(t.trials > 0 for t in tuned.tuning.tasks), names
    for _ in range(2):
        a, b = plain.step(x, labels, 0.05)[0], tuned.step(x, labels, 0.05)[0]
        np.testing.assert_allclose(a, b, rtol=1e-5)
    for p, q in zip(plain.params, tuned.params):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-4, atol=1e-5)
    again = Trainer(graph, threads=1, tune_trials=1, tune_dir=tmp_path / "db")
    assert again.tuning.new_trials == 0
    with pytest.raises(SynoError, match="needs --out"):
        train(Config(model="builtin:small-cnn", data="digits", width=3, tune_trials=1))


def _relax_update(opt, params, grads, slots, scalars):
    import tvm
    from tvm import relax

    bb = relax.BlockBuilder()
    var = lambda n, a: relax.Var(n, relax.TensorType(a.shape, "float32"))  # noqa: E731
    pv, gv = [var(f"p{i}", a) for i, a in enumerate(params)], [var(f"g{i}", a) for i, a in enumerate(grads)]
    sv = [[var(f"s{i}_{k}", a) for k, a in enumerate(ss)] for i, ss in enumerate(slots)]
    cv = [relax.Var(f"c{i}", relax.TensorType((), "float32")) for i in range(len(scalars))]
    with bb.function("update", pv + gv + [v for ss in sv for v in ss] + cv):
        with bb.dataflow():
            new_p, new_s = opt.emit(bb, pv, gv, sv, cv)
            out = bb.emit_output(relax.Tuple(new_p + [v for ss in new_s for v in ss]))
        bb.emit_func_output(out)
    vm = relax.VirtualMachine(tvm.compile(bb.get(), target="llvm"), tvm.cpu())
    args = [tvm.runtime.tensor(a.astype(np.float32)) for a in params + grads + [s for ss in slots for s in ss]]
    res = vm["update"](*args, *[tvm.runtime.tensor(np.float32(c)) for c in scalars])
    return [r.numpy() for r in res]


def test_optimizers_match_pytorch_rules():
    rng = np.random.default_rng(3)
    p, g = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    v = rng.standard_normal((5, 3))
    sgd = SGD(momentum=0.8, weight_decay=0.01)
    new_p, new_v = _relax_update(sgd, [p], [g], [[v]], sgd.scalars(0.3, 1))
    v_ref = 0.8 * v + g + 0.01 * p
    np.testing.assert_allclose(new_v, v_ref, rtol=1e-5)
    np.testing.assert_allclose(new_p, p - 0.3 * v_ref, rtol=1e-5)
    adam = Adam(weight_decay=0.02)
    m, s = rng.standard_normal((5, 3)), rng.random((5, 3))
    t = 3
    new_p, new_m, new_s = _relax_update(adam, [p], [g], [[m, s]], adam.scalars(0.01, t))
    gg = g + 0.02 * p
    m_ref, s_ref = 0.9 * m + 0.1 * gg, 0.999 * s + 0.001 * gg * gg
    p_ref = p - 0.01 / (1 - 0.9 ** t) * m_ref / (np.sqrt(s_ref) / np.sqrt(1 - 0.999 ** t) + 1e-8)
    np.testing.assert_allclose(new_m, m_ref, rtol=1e-5)
    np.testing.assert_allclose(new_s, s_ref, rtol=1e-5)
    np.testing.assert_allclose(new_p, p_ref, rtol=1e-5)


def test_schedules():
    cos = Schedule("cosine", 0.1, 100)
    assert cos(0) == pytest.approx(0.1) and cos(50) == pytest.approx(0.05) and cos(100) == pytest.approx(0.0)
    step = Schedule("step", 0.1, 90, every=30)
    assert [step(i) for i in (0, 29, 30, 60)] == pytest.approx([0.1, 0.1, 0.01, 0.001])
    warm = Schedule("constant", 0.2, 10, warmup=4)
    assert [warm(i) for i in range(5)] == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.2])
    with pytest.raises(SynoError):
        Schedule("linear", 0.1, 10)


def test_data_split_and_augmentation_are_deterministic():
    a, b = data.load("digits", seed=5), data.load("digits", seed=5)
    assert a.train_x.shape[1:] == (1, 32, 32) and a.image_shape == (3, 32, 32)
    np.testing.assert_array_equal(a.val_y, b.val_y)
    assert len(a.train_y) + len(a.val_y) == 1797 and abs(float(a.train_x.mean())) < 1e-5
    assert not np.array_equal(a.val_y, data.load("digits", seed=6).val_y)
    x = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    out = data.augment(x, np.random.default_rng(0), pad=1)
    assert out.shape == x.shape
    for img, src in zip(out, x):  # every output is a shifted (maybe flipped) window of the padded source
        padded = np.pad(src, ((0, 0), (1, 1), (1, 1)))
        windows = [padded[:, i:i + 4, j:j + 4] for i in range(3) for j in range(3)]
        assert any(np.array_equal(img, w) or np.array_equal(img, w[:, :, ::-1]) for w in windows)
    batches = list(data.batches(a.val_x, a.val_y, 64, 3))
    assert sum(v for _, _, v in batches) == len(a.val_y) and all(xb.shape == (64, 3, 32, 32) for xb, _, _ in batches)


def test_fashion_mnist_is_read_from_the_debian_package():
    if not data.FASHION_DIR.is_dir():
        pytest.skip("dataset-fashion-mnist is not installed")
    images, labels = data.fashion_mnist()
    assert images.shape == (70000, 28, 28) and images.dtype == np.uint8
    assert sorted(np.bincount(labels)) == [7000] * 10


@pytest.mark.parametrize("model,optimizer,lr,epochs,min_acc", [
    ("builtin:small-cnn", "adam", 0.03, 3, 0.13),      # two convs + global pooling: a weak model, it learns slowly
    ("builtin:resnet18-cifar", "sgd", 0.1, 2, 0.3),
    ("builtin:vit-tiny", "adam", 0.003, 3, 0.13),     # LayerNorm, attention, Slice: the transformer path
])
def test_loss_falls_on_digits(model, optimizer, lr, epochs, min_acc):
    cfg = Config(model=model, width=4, batch=32, epochs=epochs, lr=lr, optimizer=optimizer, data="digits",
                 limit=640, seed=0, augment=False)
    _, hist = train(cfg, progress=False)
    losses = [e["train_loss"] for e in hist.epochs]
    assert losses[-1] < losses[0] - 0.05, losses
    assert hist.last["train_acc"] > min_acc, hist.last


def test_resume_after_kill_reproduces_the_uninterrupted_run(tmp_path):
    cfg = Config(model="builtin:small-cnn", width=2, batch=32, epochs=2, lr=0.1, data="digits", limit=256,
                 seed=3, operator="shift_conv")

    class Killed(Exception):
        pass

    def kill(epoch: int, record: dict) -> None:
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        train(cfg, tmp_path / "a", progress=False, after_epoch=kill)
    assert (tmp_path / "a" / "checkpoint.npz").is_file() and not (tmp_path / "a" / "weights.npz").exists()
    resumed, hist_a = train(cfg, tmp_path / "a", resume=True, progress=False)
    straight, hist_b = train(cfg, tmp_path / "b", progress=False)
    assert [e["epoch"] for e in hist_a.epochs] == [1, 2]
    for a, b in zip(resumed.params, straight.params):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert hist_a.last["val_acc"] == hist_b.last["val_acc"]
    with pytest.raises(SynoError, match="different settings"):
        train(Config(**{**cfg.key(), "lr": 0.2}), tmp_path / "a", resume=True, progress=False)


def test_trained_weights_are_written_back_into_onnx(tmp_path):
    cfg = Config(model="builtin:small-cnn", width=2, batch=16, epochs=1, lr=0.1, data="digits", limit=96, seed=0)
    trainer, _ = train(cfg, tmp_path, progress=False)
    model = onnx.load(str(tmp_path / "trained.onnx"))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for slot, t in zip(trainer.graph.params + trainer.graph.states, trainer.params + trainer.states):
        np.testing.assert_array_equal(inits[slot.onnx_name], t.numpy())
    original = {t.name: numpy_helper.to_array(t) for t in small_cnn(batch=16, width=2).graph.initializer}
    assert not np.array_equal(inits["conv_w_1"], original["conv_w_1"])
    # the written model computes what TVM's inference function computes (BN with the trained running statistics)
    import onnxruntime as ort

    x = np.random.default_rng(0).standard_normal((16, 3, 32, 32)).astype(np.float32)
    ref = ort.InferenceSession(str(tmp_path / "trained.onnx")).run(None, {"x": x})[0]
    np.testing.assert_allclose(trainer.predict(x), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("operator", ["shift_conv", "stacked_conv"])
def test_trained_swapped_model_is_written_as_onnx_that_computes_the_same(tmp_path, operator):
    """Both convs of small-cnn swapped (one with a bias, one followed by BatchNorm): trained.onnx, run by
    onnxruntime, computes what TVM's inference function computes with the trained weights."""
    import onnxruntime as ort

    cfg = Config(model="builtin:small-cnn", width=2, batch=16, epochs=1, lr=0.1, data="digits", limit=96, seed=0,
                 operator=operator)
    trainer, _ = train(cfg, tmp_path, progress=False)
    assert sum(d.action == "swap" for d in trainer.graph.decisions) == 2
    model = onnx.load(str(tmp_path / "trained.onnx"))
    assert "Conv" not in {n.op_type for n in model.graph.node}
    assert "BatchNormalization" in {n.op_type for n in model.graph.node}
    x = np.random.default_rng(1).standard_normal((16, 3, 32, 32)).astype(np.float32)
    ref = ort.InferenceSession(str(tmp_path / "trained.onnx")).run(None, {"x": x})[0]
    np.testing.assert_allclose(trainer.predict(x), ref, rtol=1e-4, atol=1e-5)


def test_trained_vit_with_swapped_qkv_is_written_as_onnx_that_computes_the_same(tmp_path):
    """The matmul path: GPT-2's QKV operator swapped into both QKV projections of vit-tiny (d = 48), trained, and
    exported: onnxruntime on trained.onnx == TVM's inference function."""
    import onnxruntime as ort

    cfg = Config(model="builtin:vit-tiny", width=12, batch=8, epochs=1, lr=0.003, optimizer="adam", data="digits",
                 limit=48, seed=0, augment=False, operator="gpt2_qkv")
    trainer, hist = train(cfg, tmp_path, progress=False)
    assert [d.layer for d in trainer.graph.decisions if d.action == "swap"] == ["matmul_1", "matmul_5"]
    assert np.isfinite(hist.last["train_loss"])
    x = np.random.default_rng(1).standard_normal((8, 3, 32, 32)).astype(np.float32)
    ref = ort.InferenceSession(str(tmp_path / "trained.onnx")).run(None, {"x": x})[0]
    np.testing.assert_allclose(trainer.predict(x), ref, rtol=1e-4, atol=1e-5)


def test_strided_slice_gradient_matches_finite_differences():
    """apache-tvm 0.27 has no gradient for relax.strided_slice; ours (syno_tvm.train.relax_grads) is checked here
    with a negative start, an end past the dim and two axes."""
    import tvm
    from tvm import relax

    import syno_tvm.train.relax_grads  # noqa: F401

    x = relax.Var("x", relax.TensorType((2, 8, 6), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("f", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.strided_slice(x, axes=[2, 1], begin=[2, -5], end=[4, 100]))
            loss = bb.emit_output(relax.op.sum(relax.op.multiply(y, relax.op.sin(y))))
        bb.emit_func_output(loss)
    vm = relax.VirtualMachine(tvm.compile(relax.transform.Gradient("f")(bb.get()), "llvm"), tvm.cpu())
    a = np.random.default_rng(0).uniform(-1, 1, (2, 8, 6))
    grad = vm["f_adjoint"](tvm.runtime.tensor(a.astype(np.float32)))[1][0].numpy()

    def f(v):
        s = v[:, 3:, 2:4]
        return float((s * np.sin(s)).sum())

    numeric = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        e = np.zeros_like(a)
        e[i] = 1e-6
        numeric[i] = (f(a + e) - f(a - e)) / 2e-6
    np.testing.assert_allclose(grad, numeric, atol=1e-4)
    assert np.all(grad[:, :3] == 0) and np.all(grad[:, :, :2] == 0) and np.all(grad[:, :, 4:] == 0)


def test_bad_inputs_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, pictures=np.zeros((4, 8, 8)))
    for cfg, out, resume, match in [
        (Config(data=str(bad)), None, False, "must contain arrays"),
        (Config(data=str(tmp_path / "none.npz")), None, False, "does not exist"),
        (Config(model="builtin:transformer-block", data="digits"), None, False, "not a built-in classifier"),
        (Config(model="builtin:small-cnn", data="digits", optimizer="rmsprop"), None, False, "unknown optimizer"),
        (Config(model="builtin:small-cnn", data="digits"), tmp_path / "empty", True, "no checkpoint"),
    ]:
        with pytest.raises(SynoError, match=match) as e:
            train(cfg, out, resume=resume, progress=False)
        assert "\n" not in str(e.value)


def test_resnet_graph_has_every_layer_swapped_and_differentiable():
    graph = build_graph(resnet18_cifar(batch=2, width=4), named("conv2d"))
    swapped = [d for d in graph.decisions if d.action == "swap"]
    assert len(swapped) == 20 and len(graph.states) == 40
    assert sum(p.trainable for p in graph.params) == len(graph.params) == 62
    # layers of one shape share a PrimFunc; their weights must still have distinct names (checkpoints key on them)
    assert len({p.name for p in graph.params}) == 62
    assert graph.params[0].name == "conv2d_0.W1"
    script = graph.module.script()
    assert "call_tir_with_grad" not in script and "loss_adjoint" in script


def test_cli_train_and_one_line_error(tmp_path, capsys):
    from syno_tvm.cli import main

    out = tmp_path / "run"
    argv = ["train", "--model", "builtin:small-cnn", "--width", "2", "--batch", "16", "--data", "digits",
            "--limit", "96", "--epochs", "1", "--out", str(out)]
    assert main(argv) == 0
    assert "val accuracy" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} >= {"checkpoint.npz", "weights.npz", "trained.onnx", "history.json"}
    assert main(argv[:-2] + ["--out", str(tmp_path / "other"), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("syno-tvm: error: --resume: no checkpoint") and "\n" not in err


def test_user_npz_trains(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 80)
    images = (rng.random((80, 28, 28, 1)) * 50 + labels[:, None, None, None] * 60).astype(np.uint8)  # N,H,W,C
    np.savez(tmp_path / "mine.npz", images=images, labels=labels)
    cfg = Config(model="builtin:small-cnn", width=2, batch=16, epochs=1, data=str(tmp_path / "mine.npz"), seed=0)
    trainer, hist = train(cfg, progress=False)
    assert trainer.graph.num_classes == 3  # built-ins are generated with the data's number of classes
    assert np.isfinite(hist.last["train_loss"])
    ds = data.load(str(tmp_path / "mine.npz"))
    assert ds.num_classes == 3 and ds.train_x.shape[1:] == (1, 32, 32)
