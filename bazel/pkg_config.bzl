"""A repository of system C++ libraries, each described by pkg-config.

Each entry of `libraries` becomes `@<name>//:<entry>`, a cc_library whose flags are
what `pkg-config --cflags --libs <modules>` prints on the build machine.
"""

def _pkg_config(ctx, args):
    result = ctx.execute(["pkg-config"] + args)
    if result.return_code != 0:
        fail("pkg-config %s failed: %s" % (" ".join(args), result.stderr))
    return [flag for flag in result.stdout.strip().split(" ") if flag]

def _pkg_config_repository_impl(ctx):
    build = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, modules in sorted(ctx.attr.libraries.items()):
        cflags = _pkg_config(ctx, ["--cflags"] + modules)
        libs = _pkg_config(ctx, ["--libs"] + modules) + ctx.attr.extra_linkopts.get(name, [])
        defines = [flag[2:] for flag in cflags if flag.startswith("-D")]
        copts = [flag for flag in cflags if not flag.startswith("-D")]
        build.append("cc_library(")
        build.append("    name = %r," % name)
        build.append("    defines = %r," % defines)
        build.append("    copts = %r," % copts)
        build.append("    linkopts = %r," % libs)
        build.append(")")
        build.append("")
    ctx.file("WORKSPACE", "workspace(name = %r)\n" % ctx.name)
    ctx.file("BUILD.bazel", "\n".join(build))

pkg_config_repository = repository_rule(
    implementation = _pkg_config_repository_impl,
    attrs = {
        "libraries": attr.string_list_dict(mandatory = True),
        "extra_linkopts": attr.string_list_dict(),
    },
    local = True,
)
