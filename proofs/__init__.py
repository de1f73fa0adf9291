"""proofs: the derivation steps of the limit (SPEC §3), each checked symbolically with sympy.

One lemma per module; each module's ``verify()`` returns a frozen :class:`LemmaResult`.
"""

__all__: list[str] = []
