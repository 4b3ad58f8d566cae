namespace ampc { void frontend_placeholder() {} }
