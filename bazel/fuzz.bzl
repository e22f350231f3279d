"""Fuzz targets that are also regression tests.

`omd_fuzzer(name = "foo_fuzzer", srcs = ["foo_fuzzer.cc"], corpus = "testdata/foo_corpus")`
defines, from one source defining LLVMFuzzerTestOneInput:

- `foo_fuzzer` (manual): under `--config=fuzz` (clang, libFuzzer, ASan, UBSan) the
  fuzzer itself, run by tools/fuzz; in any other build the same code with
  //testing:fuzz_driver's main, which replays the files it is given (a crash
  reproducer for gcc builds);
- `foo_fuzzer_test`: the corpus plus deterministic mutations of it, through
  //testing:fuzz_driver, in every build: what tools/test and CI run;
- `foo_fuzzer_corpus`: the corpus files.

Only the fuzzer binary links `-fsanitize=fuzzer`: linked into a cc_test it would
bring a second main.
"""

def omd_fuzzer(name, srcs, corpus, deps = [], mutations = 4000):
    """A libFuzzer target, its regression test and its corpus.

    Args:
      name: the fuzzer binary.
      srcs: sources; one defines LLVMFuzzerTestOneInput.
      corpus: directory of seed inputs, relative to the package.
      deps: what the sources use.
      mutations: pseudo-random mutations of the corpus the test runs.
    """
    native.filegroup(
        name = name + "_corpus",
        srcs = native.glob([corpus + "/*"]),
    )
    native.cc_binary(
        name = name,
        srcs = srcs,
        deps = deps + select({
            "//bazel:fuzzing": [],
            "//conditions:default": ["//testing:fuzz_driver"],
        }),
        linkopts = select({
            "//bazel:fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        tags = ["manual"],
        testonly = True,
    )
    native.cc_test(
        name = name + "_test",
        size = "small",
        srcs = srcs,
        deps = deps + ["//testing:fuzz_driver"],
        data = [":" + name + "_corpus"],
        args = ["--mutations=%d" % mutations, "$(rootpaths :%s_corpus)" % name],
    )
