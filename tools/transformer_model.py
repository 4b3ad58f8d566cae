"""The transformer fixture's PyTorch module (TinyGPT), shared by tools/gen_fixtures.py (the
fixture at its tiny size), tools/export_gpt2.py and tools/gpu_torch_bench.py (the GPU benchmark
at GPT-2 small's size). Imports only math: torch and nn are passed in."""
import math


def make_transformer_classes(torch, nn):
    """Hand-written two-layer GPT-style causal transformer."""

    class CausalSelfAttention(nn.Module):
        def __init__(self, d_model, n_heads, context, use_trilu):
            super().__init__()
            assert d_model % n_heads == 0
            self.d_model = d_model
            self.n_heads = n_heads
            self.head_dim = d_model // n_heads
            self.scale = 1.0 / math.sqrt(self.head_dim)
            self.use_trilu = use_trilu
            self.qkv = nn.Linear(d_model, 3 * d_model)
            self.proj = nn.Linear(d_model, d_model)
            if not use_trilu:
                # ONNX Trilu only exists from opset 14; for older opsets the
                # lower-triangular mask is precomputed (still with torch.tril)
                # and sliced to the runtime sequence length.
                lower = torch.tril(torch.ones(context, context))
                self.register_buffer("causal", lower.view(1, 1, context, context))

        def forward(self, x):
            batch, seq, _ = x.size()
            q, k, v = self.qkv(x).split(self.d_model, dim=2)
            # [B, T, C] -> [B, H, T, D]
            q = q.view(batch, seq, self.n_heads, self.head_dim).transpose(1, 2)
            k = k.view(batch, seq, self.n_heads, self.head_dim).transpose(1, 2)
            v = v.view(batch, seq, self.n_heads, self.head_dim).transpose(1, 2)
            scores = (q @ k.transpose(-2, -1)) * self.scale
            if self.use_trilu:
                mask = torch.tril(torch.ones(seq, seq, device=x.device))
            else:
                mask = self.causal[:, :, :seq, :seq]
            scores = scores.masked_fill(mask == 0, float("-inf"))
            probs = torch.softmax(scores, dim=-1)
            out = probs @ v
            out = out.transpose(1, 2).reshape(batch, seq, self.d_model)
            return self.proj(out)

    class Block(nn.Module):
        def __init__(self, d_model, n_heads, context, use_trilu):
            super().__init__()
            self.ln1 = nn.LayerNorm(d_model)
            self.attn = CausalSelfAttention(d_model, n_heads, context, use_trilu)
            self.ln2 = nn.LayerNorm(d_model)
            self.fc1 = nn.Linear(d_model, 4 * d_model)
            self.act = nn.GELU(approximate="none")
            self.fc2 = nn.Linear(4 * d_model, d_model)

        def forward(self, x):
            x = x + self.attn(self.ln1(x))
            x = x + self.fc2(self.act(self.fc1(self.ln2(x))))
            return x

    class TinyGPT(nn.Module):
        def __init__(self, vocab=64, context=16, d_model=32, n_heads=4,
                     n_layers=2, use_trilu=True):
            super().__init__()
            self.tok_emb = nn.Embedding(vocab, d_model)
            self.pos_emb = nn.Embedding(context, d_model)
            self.blocks = nn.ModuleList(
                [Block(d_model, n_heads, context, use_trilu) for _ in range(n_layers)])
            self.ln_f = nn.LayerNorm(d_model)
            self.lm_head = nn.Linear(d_model, vocab)

        def forward(self, idx):
            seq = idx.size(1)
            pos = torch.arange(0, seq, dtype=torch.long, device=idx.device)
            x = self.tok_emb(idx) + self.pos_emb(pos)
            for block in self.blocks:
                x = block(x)
            return self.lm_head(self.ln_f(x))

    return TinyGPT
