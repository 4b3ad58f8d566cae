#include "passes/specialize.h"

#include "ir/op_registry.h"

namespace ampc {

Status SpecializeInputs(Graph& g, const std::map<std::string, InputBinding>& bindings) {
  std::map<std::string, int64_t> symbols;
  for (const auto& [name, b] : bindings) {
    Value* v = g.FindValue(name);
    if (!v || v->kind() != ValueKind::kInput) {
      return InvalidArgument("the model has no input named '" + name + "'");
    }
    const TensorType& declared = v->type();
    int64_t elements = 1;
    for (int64_t d : b.dims) {
      if (d < 0 || d > kMaxDim || (d > 0 && elements > kMaxElements / d)) {
        return InvalidArgument("input '" + name + "': size " + std::to_string(d) +
                               " is not a valid dimension");
      }
      elements *= d;
    }
    if (b.values && static_cast<int64_t>(b.values->size()) != elements) {
      return InvalidArgument("input '" + name + "': " + std::to_string(b.values->size()) +
                             " values bound for " + std::to_string(elements) + " elements");
    }
    TensorType bound(declared.dtype, std::vector<Dim>(b.dims.begin(), b.dims.end()));
    auto mismatch = [&, &name = name] {  // clang 14 cannot capture a structured binding
      return InvalidArgument("input '" + name + "' has shape " + bound.ToString() +
                             " but the model expects " + declared.ToString());
    };
    if (declared.has_rank) {
      if (declared.rank() != bound.rank()) return mismatch();
      for (size_t i = 0; i < b.dims.size(); ++i) {
        const Dim& d = declared.dims[i];
        if (d.is_static() && d.value() != b.dims[i]) return mismatch();
        if (d.is_symbolic()) {
          auto [it, inserted] = symbols.emplace(d.symbol(), b.dims[i]);
          if (!inserted && it->second != b.dims[i]) {
            return InvalidArgument("input '" + name + "' binds dimension '" + d.symbol() + "' to " +
                                   std::to_string(b.dims[i]) + " but another input bound it to " +
                                   std::to_string(it->second));
          }
        }
      }
    }
    v->set_type(bound);
    if (b.values) {
      v->set_known_ints(std::vector<Dim>(b.values->begin(), b.values->end()));
    }
  }
  for (Value* v : g.inputs()) {
    if (!bindings.count(v->name())) {
      return InvalidArgument("no data given for input '" + v->name() + "' (" +
                             v->type().ToString() + ")");
    }
  }
  RETURN_IF_ERROR(InferGraph(g));
  for (Node* n : g.nodes()) {
    for (Value* o : n->outputs()) {
      if (o && !o->type().is_fully_static()) {
        return Unimplemented(n->Describe() + ": output '" + o->name() + "' has shape " +
                             o->type().ToString() +
                             " even with the inputs bound (a data-dependent shape)");
      }
    }
  }
  return Status::Ok();
}

}  // namespace ampc
