namespace ampc { void runtime_placeholder() {} }
