// Rematerialization for fusion: a forward elementwise value that elementwise backward nodes read
// (GELU's erf term, a scaled activation) is recomputed next to those readers from values the
// backward keeps anyway (the activation's input, initializers), instead of being stored by the
// forward kernel and loaded again by the backward one. The recomputing nodes are clones of the
// forward ones (same ops, dtypes and annotations), so every value is bit-identical; fusion then
// puts the clones in their readers' group, and the forward group stops storing the value once
// no outside node reads it. Costs arithmetic that a memory-bound step has spare.
#pragma once

#include "ir/graph.h"

namespace ampc {

struct RematOptions {
  int max_chain = 8;  // forward nodes recomputed per value, at most
};

// Rewrites `g` (a training step with #grad_of annotations on backward nodes, static shapes);
// returns the number of forward values whose backward readers now read a recomputed copy.
int RematerializeForBackward(Graph& g, const RematOptions& o = {});

}  // namespace ampc
