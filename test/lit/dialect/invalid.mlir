// One case per verifier message of the moe dialect.
// RUN: moe-opt %s -split-input-file -verify-diagnostics

func.func @weight_empty_name() {
  // expected-error @+1 {{'moe.weight' op name must not be empty}}
  %w = moe.weight "" : tensor<4xbf16>
  return
}

// -----

func.func @weight_dynamic() {
  // expected-error @+1 {{op result #0 must be statically shaped tensor of floating-point values}}
  %w = moe.weight "w" : tensor<?xbf16>
  return
}

// -----

func.func @embed_table_rank(%t: tensor<?xi32>) {
  %w = moe.weight "w" : tensor<100xbf16>
  // expected-error @+1 {{'moe.embed' op table must have shape [?, ?] (vocab, d_model), got 'tensor<100xbf16>'}}
  %h = moe.embed %t, %w : (tensor<?xi32>, tensor<100xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @embed_width(%t: tensor<?xi32>) {
  %w = moe.weight "w" : tensor<100x64xbf16>
  // expected-error @+1 {{'moe.embed' op result must have shape [?, 64] (tokens, d_model), got 'tensor<?x32xbf16>'}}
  %h = moe.embed %t, %w : (tensor<?xi32>, tensor<100x64xbf16>) -> tensor<?x32xbf16>
  return
}

// -----

func.func @embed_rows(%t: tensor<4xi32>) {
  %w = moe.weight "w" : tensor<100x64xbf16>
  // expected-error @+1 {{'moe.embed' op result must have shape [4, 64] (tokens, d_model), got 'tensor<5x64xbf16>'}}
  %h = moe.embed %t, %w : (tensor<4xi32>, tensor<100x64xbf16>) -> tensor<5x64xbf16>
  return
}

// -----

func.func @embed_dtype(%t: tensor<?xi32>) {
  %w = moe.weight "w" : tensor<100x64xbf16>
  // expected-error @+1 {{'moe.embed' op result element type must match the table's}}
  %h = moe.embed %t, %w : (tensor<?xi32>, tensor<100x64xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @embed_token_type(%t: tensor<?xi64>) {
  %w = moe.weight "w" : tensor<100x64xbf16>
  // expected-error @+1 {{op operand #0 must be 1D tensor of 32-bit signless integer values}}
  %h = moe.embed %t, %w : (tensor<?xi64>, tensor<100x64xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @rms_norm_weight(%x: tensor<?x64xbf16>) {
  %w = moe.weight "w" : tensor<32xbf16>
  // expected-error @+1 {{'moe.rms_norm' op weight must have shape [64] (d_model), got 'tensor<32xbf16>'}}
  %y = moe.rms_norm %x, %w eps = 1.0e-5 : (tensor<?x64xbf16>, tensor<32xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @rms_norm_epsilon(%x: tensor<?x64xbf16>) {
  %w = moe.weight "w" : tensor<64xbf16>
  // expected-error @+1 {{'moe.rms_norm' op epsilon must be positive}}
  %y = moe.rms_norm %x, %w eps = 0.0 : (tensor<?x64xbf16>, tensor<64xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @rms_norm_result(%x: tensor<?x64xbf16>) {
  %w = moe.weight "w" : tensor<64xbf16>
  // expected-error @+1 {{'moe.rms_norm' op result type 'tensor<?x64xf32>' must match the input type 'tensor<?x64xbf16>'}}
  %y = moe.rms_norm %x, %w eps = 1.0e-5 : (tensor<?x64xbf16>, tensor<64xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @layer_norm_bias(%x: tensor<?x64xbf16>) {
  %w = moe.weight "w" : tensor<64xbf16>
  %b = moe.weight "b" : tensor<63xbf16>
  // expected-error @+1 {{'moe.layer_norm' op bias must have shape [64] (d_model), got 'tensor<63xbf16>'}}
  %y = moe.layer_norm %x, %w, %b eps = 1.0e-5 : (tensor<?x64xbf16>, tensor<64xbf16>, tensor<63xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @layer_norm_weight(%x: tensor<?x64xbf16>) {
  %w = moe.weight "w" : tensor<65xbf16>
  %b = moe.weight "b" : tensor<64xbf16>
  // expected-error @+1 {{'moe.layer_norm' op weight must have shape [64] (d_model), got 'tensor<65xbf16>'}}
  %y = moe.layer_norm %x, %w, %b eps = 1.0e-5 : (tensor<?x64xbf16>, tensor<65xbf16>, tensor<64xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @layer_norm_epsilon(%x: tensor<?x64xbf16>) {
  %w = moe.weight "w" : tensor<64xbf16>
  // expected-error @+1 {{'moe.layer_norm' op epsilon must be positive}}
  %y = moe.layer_norm %x, %w, %w eps = -1.0 : (tensor<?x64xbf16>, tensor<64xbf16>, tensor<64xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @layer_norm_result(%x: tensor<?x64xbf16>) {
  %w = moe.weight "w" : tensor<64xbf16>
  // expected-error @+1 {{'moe.layer_norm' op result type 'tensor<4x64xbf16>' must match the input type 'tensor<?x64xbf16>'}}
  %y = moe.layer_norm %x, %w, %w eps = 1.0e-5 : (tensor<?x64xbf16>, tensor<64xbf16>, tensor<64xbf16>) -> tensor<4x64xbf16>
  return
}

// -----

func.func @add_types(%a: tensor<?x64xbf16>, %b: tensor<?x64xf32>) {
  // expected-error @+1 {{'moe.add' op requires the same type for all operands and results}}
  %c = "moe.add"(%a, %b) : (tensor<?x64xbf16>, tensor<?x64xf32>) -> tensor<?x64xbf16>
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @attention_heads_divide(%x: tensor<?x64xbf16>, %pos: tensor<?xi32>, %kv: !kv) {
  %wq = moe.weight "q" : tensor<48x64xbf16>
  %wk = moe.weight "k" : tensor<32x64xbf16>
  %wo = moe.weight "o" : tensor<64x48xbf16>
  // expected-error @+1 {{'moe.attention' op num_heads (3) must be a multiple of num_kv_heads (2)}}
  %a, %kv1 = moe.attention %x, %pos, %kv layer 0 heads 3 kv_heads 2 head_dim 16 weights(%wq, %wk, %wk, %wo) : (tensor<?x64xbf16>, tensor<?xi32>, !kv, tensor<48x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x48xbf16>) -> (tensor<?x64xbf16>, !kv)
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @attention_zero_heads(%x: tensor<?x64xbf16>, %pos: tensor<?xi32>, %kv: !kv) {
  %wq = moe.weight "q" : tensor<64x64xbf16>
  %wk = moe.weight "k" : tensor<32x64xbf16>
  // expected-error @+1 {{'moe.attention' op num_heads must be positive, got 0}}
  %a, %kv1 = moe.attention %x, %pos, %kv layer 0 heads 0 kv_heads 2 head_dim 16 weights(%wq, %wk, %wk, %wq) : (tensor<?x64xbf16>, tensor<?xi32>, !kv, tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>) -> (tensor<?x64xbf16>, !kv)
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @attention_zero_kv_heads(%x: tensor<?x64xbf16>, %pos: tensor<?xi32>, %kv: !kv) {
  %wq = moe.weight "q" : tensor<64x64xbf16>
  %wk = moe.weight "k" : tensor<32x64xbf16>
  // expected-error @+1 {{'moe.attention' op num_kv_heads must be positive, got 0}}
  %a, %kv1 = moe.attention %x, %pos, %kv layer 0 heads 4 kv_heads 0 head_dim 16 weights(%wq, %wk, %wk, %wq) : (tensor<?x64xbf16>, tensor<?xi32>, !kv, tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>) -> (tensor<?x64xbf16>, !kv)
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @attention_zero_head_dim(%x: tensor<?x64xbf16>, %pos: tensor<?xi32>, %kv: !kv) {
  %wq = moe.weight "q" : tensor<64x64xbf16>
  %wk = moe.weight "k" : tensor<32x64xbf16>
  // expected-error @+1 {{'moe.attention' op head_dim must be positive, got -16}}
  %a, %kv1 = moe.attention %x, %pos, %kv layer 0 heads 4 kv_heads 2 head_dim -16 weights(%wq, %wk, %wk, %wq) : (tensor<?x64xbf16>, tensor<?xi32>, !kv, tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>) -> (tensor<?x64xbf16>, !kv)
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 1, head_dim = 15, element_type = bf16>
func.func @attention_rope_odd(%x: tensor<?x60xbf16>, %pos: tensor<?xi32>, %kv: !kv) {
  %wq = moe.weight "q" : tensor<60x60xbf16>
  %wk = moe.weight "k" : tensor<15x60xbf16>
  // expected-error @+1 {{'moe.attention' op rope needs an even head_dim, got 15}}
  %a, %kv1 = moe.attention %x, %pos, %kv layer 0 heads 4 kv_heads 1 head_dim 15 rope <theta = 10000.0, style = rotate_half> weights(%wq, %wk, %wk, %wq) : (tensor<?x60xbf16>, tensor<?xi32>, !kv, tensor<60x60xbf16>, tensor<15x60xbf16>, tensor<15x60xbf16>, tensor<60x60xbf16>) -> (tensor<?x60xbf16>, !kv)
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @attention_layer(%x: tensor<?x64xbf16>, %pos: tensor<?xi32>, %kv: !kv) {
  %wq = moe.weight "q" : tensor<64x64xbf16>
  %wk = moe.weight "k" : tensor<32x64xbf16>
  // expected-error @+1 {{'moe.attention' op layer 2 is out of range for a cache of 2 layers}}
  %a, %kv1 = moe.attention %x, %pos, %kv layer 2 heads 4 kv_heads 2 head_dim 16 weights(%wq, %wk, %wk, %wq) : (tensor<?x64xbf16>, tensor<?xi32>, !kv, tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>) -> (tensor<?x64xbf16>, !kv)
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 1, head_dim = 16, element_type = bf16>
func.func @attention_cache_heads(%x: tensor<?x64xbf16>, %pos: tensor<?xi32>, %kv: !kv) {
  %wq = moe.weight "q" : tensor<64x64xbf16>
  %wk = moe.weight "k" : tensor<32x64xbf16>
  // expected-error @+1 {{'moe.attention' op kv_cache holds 1 heads of 16 but the op has 2 heads of 16}}
  %a, %kv1 = moe.attention %x, %pos, %kv layer 0 heads 4 kv_heads 2 head_dim 16 weights(%wq, %wk, %wk, %wq) : (tensor<?x64xbf16>, tensor<?xi32>, !kv, tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>) -> (tensor<?x64xbf16>, !kv)
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
!kv3 = !moe.kv_cache<num_layers = 3, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @attention_new_cache(%x: tensor<?x64xbf16>, %pos: tensor<?xi32>, %kv: !kv) {
  %wq = moe.weight "q" : tensor<64x64xbf16>
  %wk = moe.weight "k" : tensor<32x64xbf16>
  // expected-error @+1 {{'moe.attention' op new_kv_cache type '!moe.kv_cache<num_layers = 3, num_kv_heads = 2, head_dim = 16, element_type = bf16>' must match the kv_cache type}}
  %a, %kv1 = moe.attention %x, %pos, %kv layer 0 heads 4 kv_heads 2 head_dim 16 weights(%wq, %wk, %wk, %wq) : (tensor<?x64xbf16>, tensor<?xi32>, !kv, tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>) -> (tensor<?x64xbf16>, !kv3)
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @attention_result(%x: tensor<?x64xbf16>, %pos: tensor<?xi32>, %kv: !kv) {
  %wq = moe.weight "q" : tensor<64x64xbf16>
  %wk = moe.weight "k" : tensor<32x64xbf16>
  // expected-error @+1 {{'moe.attention' op result type 'tensor<?x64xf32>' must match the input type 'tensor<?x64xbf16>'}}
  %a, %kv1 = moe.attention %x, %pos, %kv layer 0 heads 4 kv_heads 2 head_dim 16 weights(%wq, %wk, %wk, %wq) : (tensor<?x64xbf16>, tensor<?xi32>, !kv, tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>) -> (tensor<?x64xf32>, !kv)
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @attention_positions(%x: tensor<4x64xbf16>, %pos: tensor<5xi32>, %kv: !kv) {
  %wq = moe.weight "q" : tensor<64x64xbf16>
  %wk = moe.weight "k" : tensor<32x64xbf16>
  // expected-error @+1 {{'moe.attention' op positions must have shape [4] (tokens), got 'tensor<5xi32>'}}
  %a, %kv1 = moe.attention %x, %pos, %kv layer 0 heads 4 kv_heads 2 head_dim 16 weights(%wq, %wk, %wk, %wq) : (tensor<4x64xbf16>, tensor<5xi32>, !kv, tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>) -> (tensor<4x64xbf16>, !kv)
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @attention_wq(%x: tensor<?x64xbf16>, %pos: tensor<?xi32>, %kv: !kv) {
  %wq = moe.weight "q" : tensor<32x64xbf16>
  %wk = moe.weight "k" : tensor<32x64xbf16>
  %wo = moe.weight "o" : tensor<64x64xbf16>
  // expected-error @+1 {{'moe.attention' op wq must have shape [64, 64] (num_heads*head_dim, d_model), got 'tensor<32x64xbf16>'}}
  %a, %kv1 = moe.attention %x, %pos, %kv layer 0 heads 4 kv_heads 2 head_dim 16 weights(%wq, %wk, %wk, %wo) : (tensor<?x64xbf16>, tensor<?xi32>, !kv, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>) -> (tensor<?x64xbf16>, !kv)
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @attention_wk(%x: tensor<?x64xbf16>, %pos: tensor<?xi32>, %kv: !kv) {
  %wq = moe.weight "q" : tensor<64x64xbf16>
  %wv = moe.weight "v" : tensor<32x64xbf16>
  // expected-error @+1 {{'moe.attention' op wk must have shape [32, 64] (num_kv_heads*head_dim, d_model), got 'tensor<64x64xbf16>'}}
  %a, %kv1 = moe.attention %x, %pos, %kv layer 0 heads 4 kv_heads 2 head_dim 16 weights(%wq, %wq, %wv, %wq) : (tensor<?x64xbf16>, tensor<?xi32>, !kv, tensor<64x64xbf16>, tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>) -> (tensor<?x64xbf16>, !kv)
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @attention_wv(%x: tensor<?x64xbf16>, %pos: tensor<?xi32>, %kv: !kv) {
  %wq = moe.weight "q" : tensor<64x64xbf16>
  %wk = moe.weight "k" : tensor<32x64xbf16>
  %wv = moe.weight "v" : tensor<16x64xbf16>
  // expected-error @+1 {{'moe.attention' op wv must have shape [32, 64] (num_kv_heads*head_dim, d_model), got 'tensor<16x64xbf16>'}}
  %a, %kv1 = moe.attention %x, %pos, %kv layer 0 heads 4 kv_heads 2 head_dim 16 weights(%wq, %wk, %wv, %wq) : (tensor<?x64xbf16>, tensor<?xi32>, !kv, tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<16x64xbf16>, tensor<64x64xbf16>) -> (tensor<?x64xbf16>, !kv)
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @attention_wo(%x: tensor<?x64xbf16>, %pos: tensor<?xi32>, %kv: !kv) {
  %wq = moe.weight "q" : tensor<64x64xbf16>
  %wk = moe.weight "k" : tensor<32x64xbf16>
  %wo = moe.weight "o" : tensor<64x32xbf16>
  // expected-error @+1 {{'moe.attention' op wo must have shape [64, 64] (d_model, num_heads*head_dim), got 'tensor<64x32xbf16>'}}
  %a, %kv1 = moe.attention %x, %pos, %kv layer 0 heads 4 kv_heads 2 head_dim 16 weights(%wq, %wk, %wk, %wo) : (tensor<?x64xbf16>, tensor<?xi32>, !kv, tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> (tensor<?x64xbf16>, !kv)
  return
}

// -----

func.func @router_weight(%x: tensor<?x64xbf16>) {
  %g = moe.weight "g" : tensor<8x32xbf16>
  // expected-error @+1 {{'moe.router' op weight must have shape [?, 64] (experts, d_model), got 'tensor<8x32xbf16>'}}
  %i, %p = moe.router %x, %g top_k 2 : (tensor<?x64xbf16>, tensor<8x32xbf16>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  return
}

// -----

func.func @router_top_k(%x: tensor<?x64xbf16>) {
  %g = moe.weight "g" : tensor<8x64xbf16>
  // expected-error @+1 {{'moe.router' op top_k (9) must be between 1 and the number of experts (8)}}
  %i, %p = moe.router %x, %g top_k 9 : (tensor<?x64xbf16>, tensor<8x64xbf16>) -> (tensor<?x9xi32>, tensor<?x9xf32>)
  return
}

// -----

func.func @router_top_k_zero(%x: tensor<?x64xbf16>) {
  %g = moe.weight "g" : tensor<8x64xbf16>
  // expected-error @+1 {{'moe.router' op top_k (0) must be between 1 and the number of experts (8)}}
  %i, %p = moe.router %x, %g top_k 0 : (tensor<?x64xbf16>, tensor<8x64xbf16>) -> (tensor<?x0xi32>, tensor<?x0xf32>)
  return
}

// -----

func.func @router_indices(%x: tensor<?x64xbf16>) {
  %g = moe.weight "g" : tensor<8x64xbf16>
  // expected-error @+1 {{'moe.router' op indices must have shape [?, 2] (tokens, top_k), got 'tensor<?x3xi32>'}}
  %i, %p = moe.router %x, %g top_k 2 : (tensor<?x64xbf16>, tensor<8x64xbf16>) -> (tensor<?x3xi32>, tensor<?x2xf32>)
  return
}

// -----

func.func @router_weights(%x: tensor<4x64xbf16>) {
  %g = moe.weight "g" : tensor<8x64xbf16>
  // expected-error @+1 {{'moe.router' op routing_weights must have shape [4, 2] (tokens, top_k), got 'tensor<3x2xf32>'}}
  %i, %p = moe.router %x, %g top_k 2 : (tensor<4x64xbf16>, tensor<8x64xbf16>) -> (tensor<4x2xi32>, tensor<3x2xf32>)
  return
}

// -----

func.func @experts_gate_up(%x: tensor<?x64xbf16>, %i: tensor<?x2xi32>, %p: tensor<?x2xf32>) {
  %gu = moe.weight "gu" : tensor<8x128x64xbf16>
  %dn = moe.weight "dn" : tensor<8x64x128xbf16>
  // expected-error @+1 {{'moe.experts' op gate_up must have shape [8, 256, 64] (experts, 2*ffn, d_model for a gated FFN), got 'tensor<8x128x64xbf16>'}}
  %y = moe.experts %x, %i, %p, %gu, %dn activation silu gated : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<8x128x64xbf16>, tensor<8x64x128xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @experts_up(%x: tensor<?x64xbf16>, %i: tensor<?x2xi32>, %p: tensor<?x2xf32>) {
  %gu = moe.weight "gu" : tensor<8x256x64xbf16>
  %dn = moe.weight "dn" : tensor<8x64x128xbf16>
  // expected-error @+1 {{'moe.experts' op gate_up must have shape [8, 128, 64] (experts, ffn, d_model), got 'tensor<8x256x64xbf16>'}}
  %y = moe.experts %x, %i, %p, %gu, %dn activation gelu : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<8x256x64xbf16>, tensor<8x64x128xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @experts_down(%x: tensor<?x64xbf16>, %i: tensor<?x2xi32>, %p: tensor<?x2xf32>) {
  %gu = moe.weight "gu" : tensor<8x256x64xbf16>
  %dn = moe.weight "dn" : tensor<8x32x128xbf16>
  // expected-error @+1 {{'moe.experts' op down must have shape [?, 64, ?] (experts, d_model, ffn), got 'tensor<8x32x128xbf16>'}}
  %y = moe.experts %x, %i, %p, %gu, %dn activation silu gated : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<8x256x64xbf16>, tensor<8x32x128xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @experts_top_k(%x: tensor<?x64xbf16>, %i: tensor<?x4xi32>, %p: tensor<?x4xf32>) {
  %gu = moe.weight "gu" : tensor<2x256x64xbf16>
  %dn = moe.weight "dn" : tensor<2x64x128xbf16>
  // expected-error @+1 {{'moe.experts' op top_k (4) must be between 1 and the number of experts (2)}}
  %y = moe.experts %x, %i, %p, %gu, %dn activation silu gated : (tensor<?x64xbf16>, tensor<?x4xi32>, tensor<?x4xf32>, tensor<2x256x64xbf16>, tensor<2x64x128xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @experts_routing_weights(%x: tensor<?x64xbf16>, %i: tensor<?x2xi32>, %p: tensor<?x1xf32>) {
  %gu = moe.weight "gu" : tensor<8x256x64xbf16>
  %dn = moe.weight "dn" : tensor<8x64x128xbf16>
  // expected-error @+1 {{'moe.experts' op routing_weights must have shape [?, 2] (tokens, top_k), got 'tensor<?x1xf32>'}}
  %y = moe.experts %x, %i, %p, %gu, %dn activation silu gated : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x1xf32>, tensor<8x256x64xbf16>, tensor<8x64x128xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @experts_result(%x: tensor<?x64xbf16>, %i: tensor<?x2xi32>, %p: tensor<?x2xf32>) {
  %gu = moe.weight "gu" : tensor<8x256x64xbf16>
  %dn = moe.weight "dn" : tensor<8x64x128xbf16>
  // expected-error @+1 {{'moe.experts' op result type 'tensor<?x64xf16>' must match the input type 'tensor<?x64xbf16>'}}
  %y = moe.experts %x, %i, %p, %gu, %dn activation silu gated : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<8x256x64xbf16>, tensor<8x64x128xbf16>) -> tensor<?x64xf16>
  return
}

// -----

func.func @experts_activation(%x: tensor<?x64xbf16>, %i: tensor<?x2xi32>, %p: tensor<?x2xf32>) {
  %gu = moe.weight "gu" : tensor<8x256x64xbf16>
  %dn = moe.weight "dn" : tensor<8x64x128xbf16>
  // expected-error @+1 {{expected string or keyword containing one of the following enum values for attribute 'activation' [silu, gelu, relu]}}
  %y = moe.experts %x, %i, %p, %gu, %dn activation swish gated : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<8x256x64xbf16>, tensor<8x64x128xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @ffn_down(%x: tensor<?x64xbf16>) {
  %u = moe.weight "u" : tensor<128x64xbf16>
  %d = moe.weight "d" : tensor<32x128xbf16>
  // expected-error @+1 {{'moe.ffn' op down must have shape [64, ?] (d_model, ffn), got 'tensor<32x128xbf16>'}}
  %y = moe.ffn %x up %u down %d activation relu : (tensor<?x64xbf16>, tensor<128x64xbf16>, tensor<32x128xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @ffn_up(%x: tensor<?x64xbf16>) {
  %u = moe.weight "u" : tensor<96x64xbf16>
  %d = moe.weight "d" : tensor<64x128xbf16>
  // expected-error @+1 {{'moe.ffn' op up must have shape [128, 64] (ffn, d_model), got 'tensor<96x64xbf16>'}}
  %y = moe.ffn %x up %u down %d activation relu : (tensor<?x64xbf16>, tensor<96x64xbf16>, tensor<64x128xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @ffn_gate(%x: tensor<?x64xbf16>) {
  %u = moe.weight "u" : tensor<128x64xbf16>
  %d = moe.weight "d" : tensor<64x128xbf16>
  %g = moe.weight "g" : tensor<64x64xbf16>
  // expected-error @+1 {{'moe.ffn' op gate must have shape [128, 64] (ffn, d_model), got 'tensor<64x64xbf16>'}}
  %y = moe.ffn %x up %u down %d gate %g activation silu : (tensor<?x64xbf16>, tensor<128x64xbf16>, tensor<64x128xbf16>, tensor<64x64xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @ffn_result(%x: tensor<?x64xbf16>) {
  %u = moe.weight "u" : tensor<128x64xbf16>
  %d = moe.weight "d" : tensor<64x128xbf16>
  // expected-error @+1 {{'moe.ffn' op result type 'tensor<?x64xf32>' must match the input type 'tensor<?x64xbf16>'}}
  %y = moe.ffn %x up %u down %d activation relu : (tensor<?x64xbf16>, tensor<128x64xbf16>, tensor<64x128xbf16>) -> tensor<?x64xf32>
  return
}

// -----

func.func @gather_tokens(%x: tensor<?x64xbf16>, %rows: tensor<3xi32>) {
  // expected-error @+1 {{'moe.gather_tokens' op result must have shape [3, 64] (rows, features), got 'tensor<4x64xbf16>'}}
  %y = moe.gather_tokens %x, %rows : (tensor<?x64xbf16>, tensor<3xi32>) -> tensor<4x64xbf16>
  return
}

// -----

func.func @lm_head_weight(%x: tensor<?x64xbf16>) {
  %w = moe.weight "w" : tensor<100x32xbf16>
  // expected-error @+1 {{'moe.lm_head' op weight must have shape [?, 64] (vocab, d_model), got 'tensor<100x32xbf16>'}}
  %l = moe.lm_head %x, %w : (tensor<?x64xbf16>, tensor<100x32xbf16>) -> tensor<?x100xf32>
  return
}

// -----

func.func @lm_head_logits(%x: tensor<?x64xbf16>) {
  %w = moe.weight "w" : tensor<100x64xbf16>
  // expected-error @+1 {{'moe.lm_head' op logits must have shape [?, 100] (tokens, vocab), got 'tensor<?x99xf32>'}}
  %l = moe.lm_head %x, %w : (tensor<?x64xbf16>, tensor<100x64xbf16>) -> tensor<?x99xf32>
  return
}

// -----

func.func @lm_head_f32(%x: tensor<?x64xbf16>) {
  %w = moe.weight "w" : tensor<100x64xbf16>
  // expected-error @+1 {{op result #0 must be 2D tensor of 32-bit float values}}
  %l = moe.lm_head %x, %w : (tensor<?x64xbf16>, tensor<100x64xbf16>) -> tensor<?x100xbf16>
  return
}

// -----

func.func @sample_rows(%l: tensor<4x100xf32>, %t: tensor<3xf32>, %k: tensor<4xi32>, %p: tensor<4xf32>, %s: tensor<4xi64>) {
  // expected-error @+1 {{'moe.sample' op temperature must have shape [4] (rows of logits), got 'tensor<3xf32>'}}
  %n = moe.sample %l, %t, %k, %p, %s : (tensor<4x100xf32>, tensor<3xf32>, tensor<4xi32>, tensor<4xf32>, tensor<4xi64>) -> tensor<4xi32>
  return
}

// -----

func.func @sample_tokens(%l: tensor<4x100xf32>, %t: tensor<4xf32>, %k: tensor<4xi32>, %p: tensor<4xf32>, %s: tensor<4xi64>) {
  // expected-error @+1 {{'moe.sample' op tokens must have shape [4] (rows of logits), got 'tensor<2xi32>'}}
  %n = moe.sample %l, %t, %k, %p, %s : (tensor<4x100xf32>, tensor<4xf32>, tensor<4xi32>, tensor<4xf32>, tensor<4xi64>) -> tensor<2xi32>
  return
}

// -----

func.func @linear_weight(%x: tensor<?x64xbf16>) {
  %w = moe.weight "w" : tensor<32x16xbf16>
  // expected-error @+1 {{'moe.linear' op weight must have shape [?, 64] (out, in), got 'tensor<32x16xbf16>'}}
  %y = moe.linear %x, %w category attention : (tensor<?x64xbf16>, tensor<32x16xbf16>) -> tensor<?x32xbf16>
  return
}

// -----

func.func @linear_result(%x: tensor<?x64xbf16>) {
  %w = moe.weight "w" : tensor<32x64xbf16>
  // expected-error @+1 {{'moe.linear' op result must have shape [?, 32] (tokens, out), got 'tensor<?x64xbf16>'}}
  %y = moe.linear %x, %w category mlp : (tensor<?x64xbf16>, tensor<32x64xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @rope_odd(%x: tensor<?x60xbf16>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'moe.rope' op head_dim must be even, got 15}}
  %y = moe.rope %x, %pos head_dim 15 <theta = 10000.0, style = rotate_half> : (tensor<?x60xbf16>, tensor<?xi32>) -> tensor<?x60xbf16>
  return
}

// -----

func.func @rope_zero(%x: tensor<?x60xbf16>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'moe.rope' op head_dim must be positive, got 0}}
  %y = moe.rope %x, %pos head_dim 0 <theta = 10000.0, style = rotate_half> : (tensor<?x60xbf16>, tensor<?xi32>) -> tensor<?x60xbf16>
  return
}

// -----

func.func @rope_width(%x: tensor<?x60xbf16>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'moe.rope' op input width 60 is not a multiple of head_dim 16}}
  %y = moe.rope %x, %pos head_dim 16 <theta = 10000.0, style = rotate_half> : (tensor<?x60xbf16>, tensor<?xi32>) -> tensor<?x60xbf16>
  return
}

// -----

func.func @rope_result(%x: tensor<?x64xbf16>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'moe.rope' op result type 'tensor<?x64xf32>' must match the input type 'tensor<?x64xbf16>'}}
  %y = moe.rope %x, %pos head_dim 16 <theta = 10000.0, style = rotate_half> : (tensor<?x64xbf16>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @rope_positions(%x: tensor<2x64xbf16>, %pos: tensor<3xi32>) {
  // expected-error @+1 {{'moe.rope' op positions must have shape [2] (tokens), got 'tensor<3xi32>'}}
  %y = moe.rope %x, %pos head_dim 16 <theta = 10000.0, style = rotate_half> : (tensor<2x64xbf16>, tensor<3xi32>) -> tensor<2x64xbf16>
  return
}

// -----

func.func @rope_theta(%x: tensor<?x64xbf16>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{rope theta must be greater than 1, got 5.000000e-01}}
  %y = moe.rope %x, %pos head_dim 16 <theta = 0.5, style = rotate_half> : (tensor<?x64xbf16>, tensor<?xi32>) -> tensor<?x64xbf16>
  return
}

// -----

// expected-error @+1 {{kv_cache num_layers, num_kv_heads and head_dim must be positive, got 0, 1, 16}}
func.func private @cache_layers(!moe.kv_cache<num_layers = 0, num_kv_heads = 1, head_dim = 16, element_type = bf16>)

// -----

// expected-error @+1 {{kv_cache element_type must be a float type, got 'i8'}}
func.func private @cache_type(!moe.kv_cache<num_layers = 1, num_kv_heads = 1, head_dim = 16, element_type = i8>)

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @cache_write_layer(%kv: !kv, %k: tensor<?x32xbf16>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'moe.kv_cache_write' op layer -1 is out of range for a cache of 2 layers}}
  %kv1 = moe.kv_cache_write %kv[-1], %k, %k, %pos : (!kv, tensor<?x32xbf16>, tensor<?x32xbf16>, tensor<?xi32>) -> !kv
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 1, num_kv_heads = 1, head_dim = 5, element_type = bf16>
func.func @cache_write_rope(%kv: !kv, %k: tensor<?x5xbf16>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'moe.kv_cache_write' op rope needs an even head_dim, got 5}}
  %kv1 = moe.kv_cache_write %kv[0], %k, %k, %pos rope <theta = 10000.0, style = rotate_half> : (!kv, tensor<?x5xbf16>, tensor<?x5xbf16>, tensor<?xi32>) -> !kv
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 1, num_kv_heads = 1, head_dim = 5, element_type = bf16>
func.func @attend_rope(%kv: !kv, %q: tensor<?x10xbf16>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'moe.attend' op rope needs an even head_dim, got 5}}
  %a = moe.attend %q, %kv[0], %pos heads 2 rope <theta = 10000.0, style = interleaved> : (tensor<?x10xbf16>, !kv, tensor<?xi32>) -> tensor<?x10xbf16>
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @cache_write_keys(%kv: !kv, %k: tensor<?x16xbf16>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'moe.kv_cache_write' op keys must have shape [?, 32] (tokens, num_kv_heads*head_dim), got 'tensor<?x16xbf16>'}}
  %kv1 = moe.kv_cache_write %kv[0], %k, %k, %pos : (!kv, tensor<?x16xbf16>, tensor<?x16xbf16>, tensor<?xi32>) -> !kv
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @cache_write_values(%kv: !kv, %k: tensor<4x32xbf16>, %v: tensor<5x32xbf16>, %pos: tensor<4xi32>) {
  // expected-error @+1 {{'moe.kv_cache_write' op values must have shape [4, 32] (tokens, num_kv_heads*head_dim), got 'tensor<5x32xbf16>'}}
  %kv1 = moe.kv_cache_write %kv[0], %k, %v, %pos : (!kv, tensor<4x32xbf16>, tensor<5x32xbf16>, tensor<4xi32>) -> !kv
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @cache_write_positions(%kv: !kv, %k: tensor<4x32xbf16>, %pos: tensor<3xi32>) {
  // expected-error @+1 {{'moe.kv_cache_write' op positions must have shape [4] (tokens), got 'tensor<3xi32>'}}
  %kv1 = moe.kv_cache_write %kv[0], %k, %k, %pos : (!kv, tensor<4x32xbf16>, tensor<4x32xbf16>, tensor<3xi32>) -> !kv
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
!kvf = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = f32>
func.func @cache_write_result(%kv: !kv, %k: tensor<?x32xbf16>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'moe.kv_cache_write' op result type '!moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = f32>' must match the kv_cache type}}
  %kv1 = moe.kv_cache_write %kv[0], %k, %k, %pos : (!kv, tensor<?x32xbf16>, tensor<?x32xbf16>, tensor<?xi32>) -> !kvf
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @attend_layer(%q: tensor<?x64xbf16>, %kv: !kv, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'moe.attend' op layer 5 is out of range for a cache of 2 layers}}
  %a = moe.attend %q, %kv[5], %pos heads 4 : (tensor<?x64xbf16>, !kv, tensor<?xi32>) -> tensor<?x64xbf16>
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @attend_heads(%q: tensor<?x48xbf16>, %kv: !kv, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'moe.attend' op num_heads (3) must be a multiple of the cache's num_kv_heads (2)}}
  %a = moe.attend %q, %kv[0], %pos heads 3 : (tensor<?x48xbf16>, !kv, tensor<?xi32>) -> tensor<?x48xbf16>
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @attend_zero_heads(%q: tensor<?x64xbf16>, %kv: !kv, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'moe.attend' op num_heads must be positive, got 0}}
  %a = moe.attend %q, %kv[0], %pos heads 0 : (tensor<?x64xbf16>, !kv, tensor<?xi32>) -> tensor<?x64xbf16>
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @attend_queries(%q: tensor<?x32xbf16>, %kv: !kv, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'moe.attend' op queries must have shape [?, 64] (tokens, num_heads*head_dim), got 'tensor<?x32xbf16>'}}
  %a = moe.attend %q, %kv[0], %pos heads 4 : (tensor<?x32xbf16>, !kv, tensor<?xi32>) -> tensor<?x32xbf16>
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @attend_result(%q: tensor<?x64xbf16>, %kv: !kv, %pos: tensor<?xi32>) {
  // expected-error @+1 {{'moe.attend' op result type 'tensor<?x64xf32>' must match the queries type 'tensor<?x64xbf16>'}}
  %a = moe.attend %q, %kv[0], %pos heads 4 : (tensor<?x64xbf16>, !kv, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @attend_positions(%q: tensor<2x64xbf16>, %kv: !kv, %pos: tensor<?x1xi32>) {
  // expected-error @+1 {{op operand #2 must be 1D tensor of 32-bit signless integer values}}
  %a = moe.attend %q, %kv[0], %pos heads 4 : (tensor<2x64xbf16>, !kv, tensor<?x1xi32>) -> tensor<2x64xbf16>
  return
}

// -----

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @attend_positions_rows(%q: tensor<2x64xbf16>, %kv: !kv, %pos: tensor<3xi32>) {
  // expected-error @+1 {{'moe.attend' op positions must have shape [2] (tokens), got 'tensor<3xi32>'}}
  %a = moe.attend %q, %kv[0], %pos heads 4 : (tensor<2x64xbf16>, !kv, tensor<3xi32>) -> tensor<2x64xbf16>
  return
}

// -----

func.func @dispatch_experts(%x: tensor<?x64xbf16>, %i: tensor<?x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op num_experts must be positive, got 0}}
  %xp, %off, %perm = moe.dispatch %x, %i experts 0 : (tensor<?x64xbf16>, tensor<?x2xi32>) -> (tensor<?x64xbf16>, tensor<1xi32>, tensor<?xi32>)
  return
}

// -----

func.func @dispatch_top_k(%x: tensor<?x64xbf16>, %i: tensor<?x4xi32>) {
  // expected-error @+1 {{'moe.dispatch' op tokens are routed to 4 experts but there are only 2}}
  %xp, %off, %perm = moe.dispatch %x, %i experts 2 : (tensor<?x64xbf16>, tensor<?x4xi32>) -> (tensor<?x64xbf16>, tensor<3xi32>, tensor<?xi32>)
  return
}

// -----

func.func @dispatch_indices(%x: tensor<4x64xbf16>, %i: tensor<3x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op indices must have shape [4, ?] (tokens, top_k), got 'tensor<3x2xi32>'}}
  %xp, %off, %perm = moe.dispatch %x, %i experts 8 : (tensor<4x64xbf16>, tensor<3x2xi32>) -> (tensor<?x64xbf16>, tensor<9xi32>, tensor<?xi32>)
  return
}

// -----

func.func @dispatch_permuted(%x: tensor<?x64xbf16>, %i: tensor<?x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op permuted must have shape [?, 64] (tokens*top_k, d_model), got 'tensor<?x32xbf16>'}}
  %xp, %off, %perm = moe.dispatch %x, %i experts 8 : (tensor<?x64xbf16>, tensor<?x2xi32>) -> (tensor<?x32xbf16>, tensor<9xi32>, tensor<?xi32>)
  return
}

// -----

func.func @dispatch_offsets(%x: tensor<?x64xbf16>, %i: tensor<?x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op offsets must have shape [9] (experts+1), got 'tensor<8xi32>'}}
  %xp, %off, %perm = moe.dispatch %x, %i experts 8 : (tensor<?x64xbf16>, tensor<?x2xi32>) -> (tensor<?x64xbf16>, tensor<8xi32>, tensor<?xi32>)
  return
}

// -----

func.func @dispatch_permutation(%x: tensor<?x64xbf16>, %i: tensor<?x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op permutation must have shape [8] (tokens*top_k), got 'tensor<7xi32>'}}
  %xp, %off, %perm = moe.dispatch %x, %i experts 8 : (tensor<?x64xbf16>, tensor<?x2xi32>) -> (tensor<8x64xbf16>, tensor<9xi32>, tensor<7xi32>)
  return
}

// -----

func.func @dispatch_dtype(%x: tensor<?x64xbf16>, %i: tensor<?x2xi32>) {
  // expected-error @+1 {{'moe.dispatch' op permuted element type must match the input's}}
  %xp, %off, %perm = moe.dispatch %x, %i experts 8 : (tensor<?x64xbf16>, tensor<?x2xi32>) -> (tensor<?x64xf32>, tensor<9xi32>, tensor<?xi32>)
  return
}

// -----

func.func @expert_ffn_top_k(%x: tensor<?x64xbf16>, %off: tensor<9xi32>) {
  %gu = moe.weight "gu" : tensor<8x256x64xbf16>
  %dn = moe.weight "dn" : tensor<8x64x128xbf16>
  // expected-error @+1 {{'moe.expert_ffn' op top_k (9) must be between 1 and the number of experts (8)}}
  %y = moe.expert_ffn %x, %off, %gu, %dn activation silu gated top_k 9 : (tensor<?x64xbf16>, tensor<9xi32>, tensor<8x256x64xbf16>, tensor<8x64x128xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @expert_ffn_offsets(%x: tensor<?x64xbf16>, %off: tensor<8xi32>) {
  %gu = moe.weight "gu" : tensor<8x256x64xbf16>
  %dn = moe.weight "dn" : tensor<8x64x128xbf16>
  // expected-error @+1 {{'moe.expert_ffn' op offsets must have shape [9] (experts+1), got 'tensor<8xi32>'}}
  %y = moe.expert_ffn %x, %off, %gu, %dn activation silu gated top_k 2 : (tensor<?x64xbf16>, tensor<8xi32>, tensor<8x256x64xbf16>, tensor<8x64x128xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @expert_ffn_weights(%x: tensor<?x64xbf16>, %off: tensor<9xi32>) {
  %gu = moe.weight "gu" : tensor<4x256x64xbf16>
  %dn = moe.weight "dn" : tensor<8x64x128xbf16>
  // expected-error @+1 {{'moe.expert_ffn' op gate_up must have shape [8, 256, 64] (experts, 2*ffn, d_model for a gated FFN), got 'tensor<4x256x64xbf16>'}}
  %y = moe.expert_ffn %x, %off, %gu, %dn activation silu gated top_k 2 : (tensor<?x64xbf16>, tensor<9xi32>, tensor<4x256x64xbf16>, tensor<8x64x128xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @expert_ffn_result(%x: tensor<?x64xbf16>, %off: tensor<9xi32>) {
  %gu = moe.weight "gu" : tensor<8x256x64xbf16>
  %dn = moe.weight "dn" : tensor<8x64x128xbf16>
  // expected-error @+1 {{'moe.expert_ffn' op result type 'tensor<4x64xbf16>' must match the input type 'tensor<?x64xbf16>'}}
  %y = moe.expert_ffn %x, %off, %gu, %dn activation silu gated top_k 2 : (tensor<?x64xbf16>, tensor<9xi32>, tensor<8x256x64xbf16>, tensor<8x64x128xbf16>) -> tensor<4x64xbf16>
  return
}

// -----

func.func @combine_permutation(%y: tensor<?x64xbf16>, %perm: tensor<7xi32>, %p: tensor<4x2xf32>) {
  // expected-error @+1 {{'moe.combine' op permutation must have shape [8] (tokens*top_k), got 'tensor<7xi32>'}}
  %r = moe.combine %y, %perm, %p : (tensor<?x64xbf16>, tensor<7xi32>, tensor<4x2xf32>) -> tensor<4x64xbf16>
  return
}

// -----

func.func @combine_result(%y: tensor<?x64xbf16>, %perm: tensor<?xi32>, %p: tensor<?x2xf32>) {
  // expected-error @+1 {{'moe.combine' op result must have shape [?, 64] (tokens, d_model), got 'tensor<?x32xbf16>'}}
  %r = moe.combine %y, %perm, %p : (tensor<?x64xbf16>, tensor<?xi32>, tensor<?x2xf32>) -> tensor<?x32xbf16>
  return
}

// -----

func.func @shard_rank() {
  // expected-error @+1 {{'moe.weight' op shard splits 1 dimensions but the weight has 2}}
  %w = moe.weight "w" shard <splits = [2]> : tensor<4x4xbf16>
  return
}

// -----

func.func @shard_chunks() {
  // expected-error @+1 {{'moe.weight' op dimension 1 of the part (3) is not a multiple of its 2 chunks}}
  %w = moe.weight "w" shard <splits = [1, 2], chunks = [1, 2]> : tensor<4x3xbf16>
  return
}

// -----

func.func @shard_splits_positive() {
  // expected-error @+1 {{shard splits must be positive}}
  %w = moe.weight "w" shard <splits = [0, 1]> : tensor<4x4xbf16>
  return
}

// -----

func.func @shard_chunk_count() {
  // expected-error @+1 {{shard has 2 splits but 1 chunks}}
  %w = moe.weight "w" shard <splits = [1, 2], chunks = [2]> : tensor<4x4xbf16>
  return
}

// -----

func.func @shard_chunks_positive() {
  // expected-error @+1 {{shard chunks must be positive}}
  %w = moe.weight "w" shard <splits = [1, 2], chunks = [1, 0]> : tensor<4x4xbf16>
  return
}

// -----

func.func @global_experts(%x: tensor<?x64xbf16>, %i: tensor<?x2xi32>, %p: tensor<?x2xf32>) {
  %gu = moe.weight "gu" : tensor<4x256x64xbf16>
  %dn = moe.weight "dn" : tensor<4x64x128xbf16>
  // expected-error @+1 {{'moe.experts' op global_experts (6) must be a multiple of the experts the weights hold (4)}}
  %y = moe.experts %x, %i, %p, %gu, %dn activation silu gated global_experts 6 : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<4x256x64xbf16>, tensor<4x64x128xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @expert_ffn_global_offsets(%x: tensor<?x64xbf16>, %off: tensor<5xi32>) {
  %gu = moe.weight "gu" : tensor<4x256x64xbf16>
  %dn = moe.weight "dn" : tensor<4x64x128xbf16>
  // expected-error @+1 {{'moe.expert_ffn' op offsets must have shape [9] (experts+1), got 'tensor<5xi32>'}}
  %y = moe.expert_ffn %x, %off, %gu, %dn activation silu gated top_k 2 global_experts 8 : (tensor<?x64xbf16>, tensor<5xi32>, tensor<4x256x64xbf16>, tensor<4x64x128xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @all_reduce_group(%x: tensor<?x64xbf16>) {
  // expected-error @+1 {{'moe.all_reduce' op group_size must be positive, got 0}}
  %y = moe.all_reduce %x group_size 0 : tensor<?x64xbf16>
  return
}

// -----

func.func @all_gather_group(%x: tensor<?x25xf32>) {
  // expected-error @+1 {{'moe.all_gather' op group_size must be positive, got -4}}
  %y = moe.all_gather %x dim 1 group_size -4 : (tensor<?x25xf32>) -> tensor<?x100xf32>
  return
}

// -----

func.func @all_gather_dim(%x: tensor<?x25xf32>) {
  // expected-error @+1 {{'moe.all_gather' op dim 2 is out of range for rank 2}}
  %y = moe.all_gather %x dim 2 group_size 4 : (tensor<?x25xf32>) -> tensor<?x100xf32>
  return
}

// -----

func.func @all_gather_result(%x: tensor<?x25xf32>) {
  // expected-error @+1 {{'moe.all_gather' op result must be the input with dimension 1 times 4 ('tensor<?x100xf32>'), got 'tensor<?x75xf32>'}}
  %y = moe.all_gather %x dim 1 group_size 4 : (tensor<?x25xf32>) -> tensor<?x75xf32>
  return
}

// -----

func.func @expert_exchange_group(%x: tensor<?x64xbf16>, %off: tensor<9xi32>, %perm: tensor<?xi32>) {
  // expected-error @+1 {{'moe.expert_exchange' op group_size must be at least 2, got 1}}
  %y = moe.expert_exchange to_experts %x, %off, %perm top_k 2 group_size 1 : (tensor<?x64xbf16>, tensor<9xi32>, tensor<?xi32>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @expert_exchange_top_k(%x: tensor<?x64xbf16>, %off: tensor<9xi32>, %perm: tensor<?xi32>) {
  // expected-error @+1 {{'moe.expert_exchange' op top_k must be positive, got 0}}
  %y = moe.expert_exchange to_tokens %x, %off, %perm top_k 0 group_size 2 : (tensor<?x64xbf16>, tensor<9xi32>, tensor<?xi32>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @expert_exchange_offsets(%x: tensor<?x64xbf16>, %off: tensor<?xi32>, %perm: tensor<?xi32>) {
  // expected-error @+1 {{'moe.expert_exchange' op offsets must have a static size of experts + 1, got 'tensor<?xi32>'}}
  %y = moe.expert_exchange to_experts %x, %off, %perm top_k 2 group_size 2 : (tensor<?x64xbf16>, tensor<?xi32>, tensor<?xi32>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @expert_exchange_spread(%x: tensor<?x64xbf16>, %off: tensor<9xi32>, %perm: tensor<?xi32>) {
  // expected-error @+1 {{'moe.expert_exchange' op 8 experts cannot be spread evenly over 3 ranks}}
  %y = moe.expert_exchange to_experts %x, %off, %perm top_k 2 group_size 3 : (tensor<?x64xbf16>, tensor<9xi32>, tensor<?xi32>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @expert_exchange_type(%x: tensor<?x64xbf16>, %off: tensor<9xi32>, %perm: tensor<?xi32>) {
  // expected-error @+1 {{'moe.expert_exchange' op failed to verify that all of {rows, result} have same type}}
  %y = moe.expert_exchange to_experts %x, %off, %perm top_k 2 group_size 2 : (tensor<?x64xbf16>, tensor<9xi32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @all_gather_tokens_group(%x: tensor<?x64xbf16>) {
  // expected-error @+1 {{'moe.all_gather_tokens' op group_size must be positive, got 0}}
  %y = moe.all_gather_tokens %x group_size 0 : tensor<?x64xbf16>
  return
}

// -----

func.func @send_stage(%x: tensor<?x64xbf16>) {
  // expected-error @+1 {{'moe.send' op stage must not be negative, got -1}}
  moe.send %x to stage -1 : tensor<?x64xbf16>
  return
}

// -----

func.func @recv_stage() {
  // expected-error @+1 {{'moe.recv' op stage must not be negative, got -2}}
  %x = moe.recv from stage -2 : tensor<?x64xbf16>
  return
}

// -----

func.func @fused_arguments(%h: tensor<?x64xbf16>) {
  // expected-error @+1 {{'moe.fused' op body arguments must have the types of the inputs}}
  %f = moe.fused ins(%h) : (tensor<?x64xbf16>) -> tensor<?x64xbf16> {
  ^bb0(%x: tensor<?x32xbf16>):
    moe.yield %h : tensor<?x64xbf16>
  }
  return
}

// -----

func.func @fused_results(%h: tensor<?x64xbf16>) {
  // expected-error @+1 {{'moe.fused' op yielded values must have the types of the results}}
  %f = moe.fused ins(%h) : (tensor<?x64xbf16>) -> tensor<?x32xbf16> {
  ^bb0(%x: tensor<?x64xbf16>):
    moe.yield %x : tensor<?x64xbf16>
  }
  return
}

// -----

func.func @yield_outside(%h: tensor<?x64xbf16>) {
  // expected-error @+1 {{'moe.yield' op expects parent op 'moe.fused'}}
  moe.yield %h : tensor<?x64xbf16>
}

// -----

func.func @all_to_all_group(%x: tensor<?x64xbf16>, %i: tensor<?x2xi32>, %p: tensor<?x2xf32>) {
  %gu = moe.weight "gu" : tensor<8x256x64xbf16>
  %dn = moe.weight "dn" : tensor<8x64x128xbf16>
  // expected-error @+1 {{'moe.experts' op all_to_all needs a group of at least 2 ranks, got 1}}
  %y = moe.experts %x, %i, %p, %gu, %dn activation silu gated all_to_all 1 : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<8x256x64xbf16>, tensor<8x64x128xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @all_to_all_experts(%x: tensor<?x64xbf16>, %i: tensor<?x2xi32>, %p: tensor<?x2xf32>) {
  %gu = moe.weight "gu" : tensor<2x256x64xbf16>
  %dn = moe.weight "dn" : tensor<2x64x128xbf16>
  // expected-error @+1 {{'moe.experts' op all_to_all over 4 ranks needs global_experts = 4 x the experts a rank holds (2), got 16}}
  %y = moe.experts %x, %i, %p, %gu, %dn activation silu gated global_experts 16 all_to_all 4 : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<2x256x64xbf16>, tensor<2x64x128xbf16>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @group_rank_divisor() {
  // expected-error @+1 {{'moe.group_rank' op divisor must be a positive divisor of group_size (4), got 3}}
  %g = moe.group_rank group_size 4 divisor 3 : tensor<1xi32>
  return
}

// -----

func.func @group_rank_size() {
  // expected-error @+1 {{'moe.group_rank' op group_size must be at least 1, got 0}}
  %g = moe.group_rank group_size 0 : tensor<1xi32>
  return
}

// -----

func.func @group_rank_type() {
  // expected-error @+1 {{'moe.group_rank' op result must be tensor<1xi32>, got 'tensor<2xi32>'}}
  %g = moe.group_rank group_size 4 : tensor<2xi32>
  return
}

// -----

func.func @embed_part(%t: tensor<?xi32>, %p: tensor<2xi32>) {
  %e = moe.weight "e" : tensor<32x64xbf16>
  // expected-error @+1 {{'moe.embed' op part must have shape [1] (one index), got 'tensor<2xi32>'}}
  %h = moe.embed %t, %e part %p : (tensor<?xi32>, tensor<32x64xbf16>, tensor<2xi32>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @expert_group_without_global(%x: tensor<?x64xbf16>, %i: tensor<?x2xi32>, %p: tensor<?x2xf32>, %g: tensor<1xi32>) {
  %gu = moe.weight "gu" : tensor<2x256x64xbf16>
  %dn = moe.weight "dn" : tensor<2x64x128xbf16>
  // expected-error @+1 {{'moe.experts' op expert_group needs global_experts}}
  %y = moe.experts %x, %i, %p, %gu, %dn activation silu gated expert_group %g : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<2x256x64xbf16>, tensor<2x64x128xbf16>, tensor<1xi32>) -> tensor<?x64xbf16>
  return
}

// -----

func.func @expert_group_shape(%x: tensor<?x64xbf16>, %off: tensor<5xi32>, %g: tensor<3xi32>) {
  %gu = moe.weight "gu" : tensor<2x256x64xbf16>
  %dn = moe.weight "dn" : tensor<2x64x128xbf16>
  // expected-error @+1 {{'moe.expert_ffn' op expert_group must have shape [1] (one index), got 'tensor<3xi32>'}}
  %y = moe.expert_ffn %x, %off, %gu, %dn activation silu gated top_k 2 global_experts 4 expert_group %g : (tensor<?x64xbf16>, tensor<5xi32>, tensor<2x256x64xbf16>, tensor<2x64x128xbf16>, tensor<3xi32>) -> tensor<?x64xbf16>
  return
}
