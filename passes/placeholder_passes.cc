namespace ampc { void passes_placeholder() {} }
