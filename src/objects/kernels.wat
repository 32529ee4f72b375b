;; The byte loops of ingest as WebAssembly: content-defined cutting (gear hash) and Adler-32
;; (src/objects/kernels.ts loads this; scripts/build-wasm.mjs compiles it at build time).
;; Memory: the gear table (256 × i32) at 0, the bytes being worked on from 1024.
(module
  (memory (export "memory") 1)

  ;; Scans bytes [p, limit) with the gear hash, starting from h = 0 at p. Returns the position
  ;; just after the first byte where (h & strict) == 0 before `normal`, or (h & loose) == 0 from
  ;; `normal` on; -1 if there is none before `limit`.
  (func (export "cut") (param $p i32) (param $normal i32) (param $limit i32) (param $strict i32) (param $loose i32) (result i32)
    (local $h i32)
    (block $strict_done
      (br_if $strict_done (i32.ge_u (local.get $p) (local.get $normal)))
      (loop $strict_loop
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1))
                               (i32.load (i32.shl (i32.load8_u (local.get $p)) (i32.const 2)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (if (i32.eqz (i32.and (local.get $h) (local.get $strict))) (then (return (local.get $p))))
        (br_if $strict_loop (i32.lt_u (local.get $p) (local.get $normal)))))
    (block $loose_done
      (br_if $loose_done (i32.ge_u (local.get $p) (local.get $limit)))
      (loop $loose_loop
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1))
                               (i32.load (i32.shl (i32.load8_u (local.get $p)) (i32.const 2)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (if (i32.eqz (i32.and (local.get $h) (local.get $loose))) (then (return (local.get $p))))
        (br_if $loose_loop (i32.lt_u (local.get $p) (local.get $limit)))))
    (i32.const -1))

  ;; Adler-32 of bytes [p, p + n), continuing from `adler` (1 for a fresh stream), as zlib
  ;; computes it. 16 bytes a step: for bytes x0..x15 after sums (a, b), a gains Σx and b gains
  ;; 16a + Σ(16 - i)·x_i. Lanes keep partial sums; both are reduced every 5536 bytes (zlib's
  ;; NMAX bound, 5552, rounded down to 16), so no sum passes 2^32.
  (func (export "adler32") (param $p i32) (param $n i32) (param $adler i32) (result i32)
    (local $a i32) (local $b i32) (local $end i32) (local $stretch i32) (local $stretchEnd i32)
    (local $x v128) (local $va v128) (local $vb v128) (local $vprev v128) (local $weights v128) (local $t v128)
    (local.set $a (i32.and (local.get $adler) (i32.const 0xffff)))
    (local.set $b (i32.shr_u (local.get $adler) (i32.const 16)))
    (local.set $weights (v128.const i8x16 16 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1))
    (local.set $end (i32.add (local.get $p) (i32.and (local.get $n) (i32.const -16))))
    (block $stretches_done
      (loop $stretches
        (br_if $stretches_done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $stretchEnd (i32.add (local.get $p) (i32.const 5536)))
        (if (i32.gt_u (local.get $stretchEnd) (local.get $end)) (then (local.set $stretchEnd (local.get $end))))
        (local.set $stretch (i32.sub (local.get $stretchEnd) (local.get $p)))
        (local.set $va (v128.const i32x4 0 0 0 0))
        (local.set $vb (v128.const i32x4 0 0 0 0))
        (local.set $vprev (v128.const i32x4 0 0 0 0))
        (loop $steps
          (local.set $x (v128.load (local.get $p)))
          ;; vprev: the sums of all earlier steps of this stretch, once per step (the 16a term)
          (local.set $vprev (i32x4.add (local.get $vprev) (local.get $va)))
          (local.set $va (i32x4.add (local.get $va)
            (i32x4.extadd_pairwise_i16x8_u (i16x8.extadd_pairwise_i8x16_u (local.get $x)))))
          (local.set $vb (i32x4.add (local.get $vb)
            (i32x4.extadd_pairwise_i16x8_u
              (i16x8.add (i16x8.extmul_low_i8x16_u (local.get $x) (local.get $weights))
                         (i16x8.extmul_high_i8x16_u (local.get $x) (local.get $weights))))))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (br_if $steps (i32.lt_u (local.get $p) (local.get $stretchEnd))))
        ;; b += stretch·a + 16·Σvprev + Σvb; a += Σva
        (local.set $t (i32x4.add (i32x4.shl (local.get $vprev) (i32.const 4)) (local.get $vb)))
        (local.set $b (i32.add (i32.add (local.get $b) (i32.mul (local.get $stretch) (local.get $a)))
          (i32.add (i32.add (i32x4.extract_lane 0 (local.get $t)) (i32x4.extract_lane 1 (local.get $t)))
                   (i32.add (i32x4.extract_lane 2 (local.get $t)) (i32x4.extract_lane 3 (local.get $t))))))
        (local.set $a (i32.add (local.get $a)
          (i32.add (i32.add (i32x4.extract_lane 0 (local.get $va)) (i32x4.extract_lane 1 (local.get $va)))
                   (i32.add (i32x4.extract_lane 2 (local.get $va)) (i32x4.extract_lane 3 (local.get $va))))))
        (local.set $a (i32.rem_u (local.get $a) (i32.const 65521)))
        (local.set $b (i32.rem_u (local.get $b) (i32.const 65521)))
        (br $stretches)))
    ;; the last n mod 16 bytes, one at a time
    (local.set $end (i32.add (local.get $end) (i32.and (local.get $n) (i32.const 15))))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $a (i32.add (local.get $a) (i32.load8_u (local.get $p))))
        (local.set $b (i32.add (local.get $b) (local.get $a)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $tail)))
    (local.set $a (i32.rem_u (local.get $a) (i32.const 65521)))
    (local.set $b (i32.rem_u (local.get $b) (i32.const 65521)))
    (i32.or (i32.shl (local.get $b) (i32.const 16)) (local.get $a)))
)
