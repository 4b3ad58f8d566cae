// The IR verifier: checks the invariants every pass must keep. Run after import and, in test
// builds, after every pass.
#pragma once

#include "ir/graph.h"
#include "ir/status.h"

namespace ampc {

// Checks: every operand is defined (graph input, initializer or an earlier node's output), so
// the node list is acyclic and in topological order; use lists match operands; every op is
// registered with a matching arity; recorded types agree with type inference (dtype and rank
// equal, static dims equal; recorded types may be more precise); initializer data matches its
// type; graph outputs are defined. Inference state is restored afterwards.
Status Verify(Graph& g);

}  // namespace ampc
