"""cyoptim.torch inside torch.distributed's sharding engines, on the gloo backend.

Two processes on this machine train a small model for 32 steps with
ZeroRedundancyOptimizer (optimizer_class=cyoptim.torch.AdamW, under DDP) and
with FSDP2's fully_shard(CPUOffloadPolicy) (DTensor params whose local shards
cyoptim.torch steps in place), checkpoint halfway (consolidate_state_dict;
torch.distributed.checkpoint) and resume. The ranks are subprocesses running
tests/distributed_worker.py; each run has a hard deadline, after which the
ranks are killed and the test fails (a hung collective never blocks the
suite). DeepSpeed's ZeRO-Offload runs when deepspeed is installed.
"""

import os
import re
import socket
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402

import cyoptim  # noqa: E402
import cyoptim.torch as cot  # noqa: E402
from cyoptim.examples.optimizers import DEMO_CHOICES  # noqa: E402

if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip(
        "torch.distributed with the gloo backend is not available", allow_module_level=True
    )

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import distributed_worker as worker  # noqa: E402

TIMEOUT = 180  # seconds for a whole multi-process run (a busy 2-core machine)
TOLERANCE = 1e-5  # float32, normwise relative: tests/test_torch.py's
needs_posix = pytest.mark.skipif(
    sys.platform == "win32", reason="the ranks meet through a file:// store path"
)


def run_ranks(scenario, out, world=2, timeout=TIMEOUT, env=None):
    """Run the scenario's ranks as subprocesses; return rank -> its result.

    The first rank to fail, or the deadline, ends the run: every rank still
    running is killed (a rank whose peer died would wait in a collective)."""
    out.mkdir(exist_ok=True)
    package_root = os.path.dirname(os.path.dirname(cyoptim.__file__))
    environment = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    environment["PYTHONPATH"] = os.pathsep.join(
        [package_root] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    )
    store = out / "store"
    logs = [open(out / f"log_{rank}.txt", "w") for rank in range(world)]
    ranks = [
        subprocess.Popen(
            [
                sys.executable,
                os.path.join(HERE, "distributed_worker.py"),
                scenario,
                str(rank),
                str(world),
                str(store),
                str(out),
            ],
            stdout=logs[rank],
            stderr=subprocess.STDOUT,
            env=environment,
        )
        for rank in range(world)
    ]
    deadline = time.monotonic() + timeout
    timed_out = False
    try:
        while any(r.poll() is None for r in ranks):
            if any(r.returncode not in (None, 0) for r in ranks):
                break
            if time.monotonic() > deadline:
                timed_out = True
                break
            time.sleep(0.1)
    finally:
        for r in ranks:
            if r.poll() is None:
                r.kill()
            r.wait()
        for log in logs:
            log.close()
    if timed_out or any(r.returncode != 0 for r in ranks):
        tails = "\n".join(
            f"--- rank {rank} (exit {r.returncode}):\n"
            + (out / f"log_{rank}.txt").read_text()[-3000:]
            for rank, r in enumerate(ranks)
        )
        what = f"timed out after {timeout} s" if timed_out else "failed"
        pytest.fail(f"{scenario} with {world} processes {what}\n{tails}")
    return {
        rank: torch.load(out / f"result_{rank}.pt", weights_only=True) for rank in range(world)
    }


@needs_posix
@pytest.mark.parametrize(
    "scenario, outcome", [("stuck-peer", "timed out after 10 s"), ("failed-peer", "failed")]
)
def test_a_hung_run_fails_instead_of_blocking(scenario, outcome, tmp_path):
    """Rank 0 waits in a collective that rank 1 never joins: the run ends at
    the deadline (rank 1 asleep), or as soon as rank 1 fails (not at the
    deadline, nor at gloo's own 60 s timeout), and every rank is killed."""
    with pytest.raises(pytest.fail.Exception, match=f"with 2 processes {outcome}\n"):
        run_ranks(scenario, tmp_path, timeout=10)


def relative_error(a, b):
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def single_process_run():
    """The same model, hyperparameters and global batches, in one process."""
    model = worker.make_model()
    opt = cot.AdamW(model.parameters(), **worker.HYPER)
    for step in range(worker.STEPS):
        worker.train_step(model, opt, *worker.global_batch(step))
    return list(model.parameters())


@needs_posix
@pytest.mark.parametrize("scenario", ["zero-params", "zero-buckets"])
def test_zero_redundancy_optimizer(scenario, tmp_path):
    """ZeroRedundancyOptimizer(optimizer_class=cot.AdamW) under DDP: each rank's
    local cot.AdamW holds about half the elements; the params equal a single
    process's cot.AdamW run to float rounding; the consolidated checkpoint
    taken halfway resumes bitwise."""
    results = run_ranks(scenario, tmp_path)
    reference = single_process_run()
    total = sum(p.numel() for p in reference)
    assert results[0]["local_numel"] + results[1]["local_numel"] == total
    assert 0 < results[0]["local_numel"] < total
    for rank, result in results.items():
        for k, (ours, theirs) in enumerate(zip(result["params"], reference)):
            assert relative_error(ours, theirs) <= TOLERANCE, (rank, k)
        # the resumed run equals the uninterrupted one bit for bit
        for ours, resumed in zip(result["params"], result["reloaded"]):
            assert torch.equal(ours, resumed)
        # the checkpoint held every param's state, taken at step 16
        assert result["saved_steps"] == {k: worker.STEPS / 2 for k in range(len(reference))}
        assert set(result["local_state_steps"]) == {float(worker.STEPS)}
        # parameters_as_bucket_view: the params are views of one bucket per rank
        expected_storages = 2 if scenario == "zero-buckets" else len(reference)
        assert result["n_storages"] == expected_storages
    for a, b in zip(results[0]["params"], results[1]["params"]):
        assert torch.equal(a, b)


@needs_posix
def test_fsdp2_cpu_offload_steps_local_shards_as_torch(tmp_path):
    """FSDP2 with CPUOffloadPolicy: DTensor params; cot.AdamW steps each rank's
    local shards in place (their pointers never change) and equals
    torch.optim.AdamW; its state is DTensors of the params' placements, as
    torch's."""
    pytest.importorskip("torch.distributed.fsdp")
    results = run_ranks("fsdp", tmp_path)
    shapes = set()
    for _rank, result in results.items():
        ours, theirs = result["cyoptim"], result["torch"]
        assert set(ours["param_types"]) == {"DTensor"}
        assert ours["same_pointers"] and theirs["same_pointers"]
        assert ours["state_kinds"] == theirs["state_kinds"]
        assert ours["state_kinds"][0]["exp_avg"] == ("DTensor", ours["param_placements"][0])
        assert ours["state_kinds"][0]["step"] == ("Tensor", ())
        assert ours["step"] == theirs["step"] == [float(worker.STEPS)] * len(ours["step"])
        for a, b in zip(
            ours["shards"] + ours["exp_avg_sq"], theirs["shards"] + theirs["exp_avg_sq"]
        ):
            assert relative_error(a, b) <= TOLERANCE
        shapes.add(tuple(tuple(s.shape) for s in ours["shards"]))
    assert len(shapes) == 2  # the ranks hold different shards


@needs_posix
def test_fsdp2_every_optimizer(tmp_path):
    """Every cyoptim.torch class (each configuration of the demo's table) under
    FSDP2 steps each rank's local shards exactly as it steps the same values
    as plain tensors (bitwise, state included), creates DTensor state as
    torch.optim does and equals it to float rounding; LAMB and Adafactor,
    whose updates read whole-tensor reductions, refuse DTensor params."""
    pytest.importorskip("torch.distributed.fsdp")
    results = run_ranks("fsdp-every", tmp_path)
    keys = {choice.key for choices in DEMO_CHOICES.values() for choice in choices}
    for _rank, result in results.items():
        assert set(result) == keys
        for key, entry in result.items():
            if key in ("lamb", "adafactor"):
                assert "reads reductions over whole tensors" in entry["refused"], key
                continue
            assert "refused" not in entry, key
            for a, b in zip(entry["shards"], entry["shadow"]):
                assert torch.equal(a, b), key
            for ours, plain in zip(entry["state"], entry["shadow_state"]):
                assert ours.keys() == plain.keys(), key
                for name in ours:
                    assert torch.equal(ours[name], plain[name]), (key, name)
            if "torch" in entry:
                assert entry["kinds"] == entry["torch_kinds"], key
                for a, b in zip(entry["shards"], entry["torch"]):
                    assert relative_error(a, b) <= TOLERANCE, key
            else:
                # torch.optim.Rprop 2.13 fails on sharded DTensors (index_put_);
                # Lion and LAMB have no torch.optim class
                assert key in ("lion", "rprop"), key
                assert key == "lion" or "index_put_" in entry["torch_error"]
                assert set(entry["kinds"][0].values()) <= {"DTensor", "Tensor"}


@needs_posix
def test_fsdp2_checkpoint_with_dcp_resumes(tmp_path):
    """torch.distributed.checkpoint: the state saved halfway from cot.AdamW
    loads into fresh objects (cot.AdamW and torch.optim.AdamW) that continue
    exactly; then into one process (another world size), which continues
    to float rounding of the two-process run."""
    pytest.importorskip("torch.distributed.fsdp")
    results = run_ranks("dcp", tmp_path)
    for _rank, result in results.items():
        for a, b in zip(result["params"], result["resumed"]):
            assert torch.equal(a, b)
        assert set(result["resumed_kinds"]) == {"DTensor"}
        assert result["resumed_steps"] == [float(worker.STEPS)] * result["n_params"]
        for name, saved in result["saved_exp_avg"].items():
            assert torch.equal(result["torch_exp_avg"][name], saved)
    resharded = run_ranks("dcp-reshard", tmp_path, world=1)[0]
    for k, full in enumerate(resharded["resumed"]):
        two = torch.cat([results[0]["params"][k], results[1]["params"][k]])
        assert relative_error(full, two) <= TOLERANCE, k


def test_deepspeed_zero_offload(tmp_path):
    """deepspeed.initialize with ZeRO stage 2 and the optimizer offloaded to the
    CPU, cot.AdamW as the client optimizer ("zero_force_ds_cpu_optimizer":
    false): DeepSpeed swaps param_groups to one flat fp32 partition per rank
    before each step; the run equals the same run with torch.optim.AdamW."""
    pytest.importorskip("deepspeed")
    with socket.socket() as s:  # DeepSpeed meets through env:// (a TCP port)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The first run JIT-builds DeepSpeed's CPU communication op (about a minute).
    results = run_ranks(
        "deepspeed",
        tmp_path,
        timeout=600,
        env={"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)},
    )
    reference = single_process_run()
    for _rank, result in results.items():
        assert result["optimizer"] == "AdamW" and result["wrapper"] == "DeepSpeedZeroOptimizer"
        assert result["flat_params"] == 1  # one flat partition per rank
        for ours, theirs, single in zip(result["cyoptim"], result["torch"], reference):
            assert relative_error(ours, theirs) <= TOLERANCE
            assert relative_error(ours, single) <= TOLERANCE
        # the state DeepSpeed reads back through its views of the flat partition
        assert result["cyoptim_state_kept"] and result["torch_state_kept"]
        for ours, theirs in zip(result["cyoptim_exp_avg_sq"], result["torch_exp_avg_sq"]):
            assert relative_error(ours, theirs) <= TOLERANCE


class _NoStorage(torch.Tensor):
    """A tensor subclass that wraps another and has no memory of its own
    (as DTensor and torch's functional wrappers): data_ptr() is not an address."""

    @staticmethod
    def __new__(cls, inner):
        return torch.Tensor._make_wrapper_subclass(
            cls, inner.shape, dtype=inner.dtype, device=inner.device
        )

    def __init__(self, inner):
        self.inner = inner

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        unwrap = lambda t: t.inner if isinstance(t, _NoStorage) else t  # noqa: E731
        return func(
            *[unwrap(a) for a in args], **{k: unwrap(v) for k, v in (kwargs or {}).items()}
        )


def test_tensor_without_memory_refused_and_nothing_written():
    """A grad or state tensor whose data_ptr() is not its memory is refused
    before anything is written (it would otherwise be read as address 0)."""
    param = torch.nn.Parameter(torch.randn(40))
    other = torch.nn.Parameter(torch.randn(30))
    opt = cot.AdamW([param, other], lr=0.1)
    for p in (param, other):
        p.grad = torch.randn(p.shape)
    opt.step()
    before = [param.detach().clone(), other.detach().clone(), opt.state[param]["exp_avg"].clone()]
    wrapper = _NoStorage(torch.randn(30))
    other.grad = wrapper
    with pytest.raises(TypeError, match=r"the grad of param 1 .* data_ptr\(\) is not its memory"):
        opt.step()
    other.grad = torch.randn(30)
    opt.state[param]["exp_avg"] = _NoStorage(torch.zeros(40))
    with pytest.raises(TypeError, match=r"state\['exp_avg'\] of param 0 .* not its memory"):
        opt.step()
    after = [param.detach(), other.detach(), before[2]]
    for a, b in zip(before, after):
        assert torch.equal(a, b)
    assert float(opt.state[param]["step"]) == 1


@needs_posix
def test_dtensor_mismatches_refused_and_nothing_written(tmp_path):
    """A DTensor param with a plain grad or state tensor, or one of other
    placements; a plain param with a DTensor grad: each refused with a
    message, before anything in any group is written."""
    pytest.importorskip("torch.distributed.tensor")
    result = run_ranks("refusals", tmp_path, world=1)[0]
    assert result["clean_step_changed"]
    expected = {
        "plain grad": "the grad of param 0 .* must be a DTensor of the param's device mesh",
        "replicated grad": r"placements \(Shard\(dim=0\),\)",
        "plain state": r"state\['exp_avg'\] of param 0 .* must be a DTensor",
        "dtensor grad of a plain param": "the grad of param 0 of param group 1 is a DTensor, "
        "but the param is not",
        "wrong local shape": r"local shard of the grad .* has shape \(7,\), but the "
        r"param's local shard has shape \(12,\)",
    }
    assert set(result["cases"]) == set(expected)
    for case, (kind, message, unchanged) in result["cases"].items():
        assert kind in ("TypeError", "ValueError"), case
        assert re.search(expected[case], message), (case, message)
        assert unchanged, case
