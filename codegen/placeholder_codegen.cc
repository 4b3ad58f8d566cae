namespace ampc { void codegen_placeholder() {} }
