#!/usr/bin/env python3
"""llama.cpp speed through llama-cpp-python (the same vendored llama.cpp as the sdist), for machines where
the llama-bench build is not available: pp = one llama_decode of P random tokens, tg = G single-token
decodes (as llama-bench -p P -n G, best of R). Also quantizes a GGUF (llama_model_quantize).
  pybench.py bench MODEL.gguf [--prompt 512] [--gen 128] [--threads 2] [--repetitions 2]   -> JSON
  pybench.py quantize IN.gguf OUT.gguf q8_0|q4_0
"""
import argparse, ctypes, json, random, sys, time
import llama_cpp

def quantize(src, dst, kind):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0}[kind]
    params.nthread = 2
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    sys.exit(rc)

def bench(args):
    t0 = time.perf_counter()
    llm = llama_cpp.Llama(model_path=args.model, n_ctx=args.prompt + args.gen + 8, n_batch=args.prompt,
                          n_ubatch=args.prompt, n_threads=args.threads, n_threads_batch=args.threads,
                          logits_all=False, verbose=False)
    load = time.perf_counter() - t0
    vocab = llm.n_vocab()
    rng = random.Random(1234)
    prompt = [rng.randrange(vocab) for _ in range(args.prompt)]
    best_pp = best_tg = float("inf")
    llm.eval(prompt[:1]); llm.reset()
    for _ in range(args.repetitions):
        llm.reset(); llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm.ctx), True)
        t = time.perf_counter(); llm.eval(prompt); best_pp = min(best_pp, time.perf_counter() - t)
        llm.reset(); llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm.ctx), True)
        t = time.perf_counter()
        for i in range(args.gen):
            llm.eval([prompt[i % len(prompt)]])
        best_tg = min(best_tg, time.perf_counter() - t)
    print(json.dumps({"prefill_tokens_per_s": args.prompt / best_pp, "decode_tokens_per_s": args.gen / best_tg,
                      "load_seconds": load}))

if __name__ == "__main__":
    if sys.argv[1] == "quantize":
        quantize(*sys.argv[2:5])
    p = argparse.ArgumentParser()
    p.add_argument("cmd"); p.add_argument("model")
    p.add_argument("--prompt", type=int, default=512); p.add_argument("--gen", type=int, default=128)
    p.add_argument("--threads", type=int, default=2); p.add_argument("--repetitions", type=int, default=2)
    bench(p.parse_args())
