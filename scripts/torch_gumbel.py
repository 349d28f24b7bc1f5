"""Times PyTorch's torch.nn.functional.gumbel_softmax (forward, hard forward, backward) and a
plain copy (clone) on CUDA at the benchmark shapes, with CUDA events; prints a markdown table.

python3 scripts/torch_gumbel.py
"""
import torch
import torch.nn.functional as F

SHAPES = [(1048576, 8), (65536, 64), (4096, 1024), (1024, 32768), (64, 262144)]


def bench(fn, reps=50):
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(5):
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / reps / 1e3)
    return sorted(times)[len(times) // 2]


def main():
    dev = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    print()
    print("| kernel | dtype | shape | GB/s (bytes moved) | copy GB/s | ratio to copy |")
    print("|---|---|---|---|---|---|")
    for dtype in (torch.float32, torch.float16):
        for rows, cols in SHAPES:
            logits = torch.randn(rows, cols, device=dev, dtype=dtype)
            size = logits.element_size() * logits.numel()
            copy = bench(lambda: logits.clone())
            fwd = bench(lambda: F.gumbel_softmax(logits, tau=0.7))
            hard = bench(lambda: F.gumbel_softmax(logits, tau=0.7, hard=True))
            x = logits.clone().requires_grad_(True)
            dy = torch.randn_like(logits)
            def backward():
                y = F.gumbel_softmax(x, tau=0.7)
                y.backward(dy)
            bwd_total = bench(backward, reps=20)
            for name, t, nbytes in (
                ("gumbel_softmax forward", fwd, 2 * size),
                ("gumbel_softmax hard forward", hard, 2 * size),
                ("gumbel_softmax forward+backward", bwd_total, 5 * size),
            ):
                print(f"| {name} | {str(dtype).split('.')[-1]} | {rows}x{cols} | "
                      f"{nbytes / t / 1e9:.1f} | {2 * size / copy / 1e9:.1f} | "
                      f"{(2 * size / copy) and (nbytes / t) / (2 * size / copy):.3f} |")
            del logits, x, dy
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
