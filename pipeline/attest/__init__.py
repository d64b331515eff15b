"""Attestations about the images a run pushed: SLSA v1 provenance of how each was built (signed and stored
by `pipeline.signing` as in-toto statements). Pure: the run gathers the facts, this package writes them.

>>> from pipeline.attest.provenance import BuildFacts, provenance_predicate
>>> facts = BuildFacts(config_path="pipelines.yaml", pipeline="shop", image="api", builder="buildx",
...                    repository="registry.example/shop/api", digest="sha256:" + "ab" * 32)
>>> provenance_predicate(facts)["runDetails"]["builder"]["id"]
'https://github.com/pipeline-build/pipeline/builders/buildx'
"""
