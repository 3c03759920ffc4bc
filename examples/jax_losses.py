"""Two JAX cross-entropy losses for ``lossproof check --framework jax``: a naive one, as often written, and a careful
one. Both take the classes last (JAX's and Keras's convention: ``--class-axis -1``) and return the mean over the
examples.

    lossproof check cross_entropy examples/jax_losses.py:naive_jax_ce --framework jax --class-axis -1
    lossproof check cross_entropy examples/jax_losses.py:careful_jax_ce --framework jax --class-axis -1

The naive one fails on typical inputs: exp(logits) overflows float16 from a logit of 11.1 on (inf / inf = NaN). The
careful one passes: it shifts by the row's maximum and keeps the shifted target logit (log_softmax as x - max -
log sum exp(x - max), so no large common offset absorbs log C, as ``logsumexp(x) - x_t`` does), and computes in
float32 where the input is float16 or bfloat16, rounding once at the end.
"""

import jax
import jax.numpy as jnp


def naive_jax_ce(logits, labels):
    """-log softmax(x)[t] as the textbook writes it: exp without a shift, then log of the ratio."""
    p = jnp.exp(logits) / jnp.sum(jnp.exp(logits), axis=-1, keepdims=True)
    picked = jnp.take_along_axis(p, labels[..., None], axis=-1)[..., 0]
    return jnp.mean(-jnp.log(picked))


def careful_jax_ce(logits, labels):
    """Max-shifted log-sum-exp, the shifted target logit, float32 accumulation for the 16-bit formats."""
    work = jnp.promote_types(logits.dtype, jnp.float32)
    x = logits.astype(work)
    shifted = x - jax.lax.stop_gradient(jnp.max(x, axis=-1, keepdims=True))
    lse = jnp.log(jnp.sum(jnp.exp(shifted), axis=-1))
    picked = jnp.take_along_axis(shifted, labels[..., None], axis=-1)[..., 0]
    return jnp.mean(lse - picked).astype(logits.dtype)
