"""External base images as inputs: what a build stands on, resolved to digests before anything builds.

`resolve`: the run's BaseResolver — each base a Dockerfile pulls (FROM, COPY --from, RUN --mount from=,
per stage, after BuildKit's ARG rules; not stages, not the run's own images) resolved once per run per
reference and platform to the digest the build uses (an index's child for the variant's platform and
Windows build), from `pipelines.lock` when it names it. `lock`: that file.

    resolver = BaseResolver(registry, lock=BaseLock.load(lock_path(config_file)), own=own_repositories(plan))
    for base in resolver.bases_of(view, build_args):      # raises BaseNotResolved before anything builds
        print(base.reference, base.platform, base.digest)
"""
