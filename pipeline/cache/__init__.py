"""The build cache: an image's input digest, which images a run can reuse, why one rebuilds (`explain`)
and the last build on a commit's history (`run --since`)."""
