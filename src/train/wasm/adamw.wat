;; AdamW over four float32 staging buffers in this module's memory, two elements per
;; iteration in float64 lanes (f64x2), with exactly the operations and order of the
;; TypeScript loop in ../adamw.ts: every product, sum, quotient and square root is one
;; IEEE float64 operation (WebAssembly never fuses or reassociates), and each result is
;; rounded to float32 only where the loop stores it. Build: deno task wasm (see
;; ../adamw_wasm.ts); the bytes are inlined in adamw_wasm_bytes.ts.
;;
;; Memory: p at 0, g at CH·4, m at 2·CH·4, v at 3·CH·4 (CH = 16384 floats, 256 KiB in all,
;; small enough to stay in L2 between the copy in, the kernel and the copy out). The
;; memory is declared shared only because V8 copies into a shared buffer at memcpy speed
;; (`TypedArray.set` into unshared wasm memory measured 3–4× slower); no thread shares it.
(module
  (memory (export "memory") 4 4 shared)
  (func (export "adamw")
    (param $n i32)          ;; elements (the kernel rounds up to an even count)
    (param $scale f64)      ;; clip factor: g ← f32(g · scale), written back to g
    (param $b1 f64) (param $omb1 f64) (param $b2 f64) (param $omb2 f64)
    (param $decay f64) (param $step f64) (param $bc2 f64) (param $eps f64)
    (local $i i32) (local $end i32)
    (local $sc v128) (local $vb1 v128) (local $vomb1 v128) (local $vb2 v128)
    (local $vomb2 v128) (local $vdecay v128) (local $vstep v128) (local $vbc2 v128)
    (local $veps v128)
    (local $g v128) (local $m v128) (local $v v128) (local $p v128)
    (local.set $sc (f64x2.splat (local.get $scale)))
    (local.set $vb1 (f64x2.splat (local.get $b1)))
    (local.set $vomb1 (f64x2.splat (local.get $omb1)))
    (local.set $vb2 (f64x2.splat (local.get $b2)))
    (local.set $vomb2 (f64x2.splat (local.get $omb2)))
    (local.set $vdecay (f64x2.splat (local.get $decay)))
    (local.set $vstep (f64x2.splat (local.get $step)))
    (local.set $vbc2 (f64x2.splat (local.get $bc2)))
    (local.set $veps (f64x2.splat (local.get $eps)))
    ;; byte offset of the end of the p region, n rounded up to even
    (local.set $end (i32.shl (i32.and (i32.add (local.get $n) (i32.const 1)) (i32.const -2)) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        ;; g ← f32(g · scale)
        (local.set $g
          (f64x2.promote_low_f32x4
            (f32x4.demote_f64x2_zero
              (f64x2.mul
                (f64x2.promote_low_f32x4 (v128.load64_zero offset=65536 (local.get $i)))
                (local.get $sc)))))
        (v128.store64_lane offset=65536 0 (local.get $i) (f32x4.demote_f64x2_zero (local.get $g)))
        ;; m ← b1·m + (1−b1)·g
        (local.set $m
          (f64x2.add
            (f64x2.mul (local.get $vb1)
              (f64x2.promote_low_f32x4 (v128.load64_zero offset=131072 (local.get $i))))
            (f64x2.mul (local.get $vomb1) (local.get $g))))
        (v128.store64_lane offset=131072 0 (local.get $i) (f32x4.demote_f64x2_zero (local.get $m)))
        ;; v ← b2·v + ((1−b2)·g)·g
        (local.set $v
          (f64x2.add
            (f64x2.mul (local.get $vb2)
              (f64x2.promote_low_f32x4 (v128.load64_zero offset=196608 (local.get $i))))
            (f64x2.mul (f64x2.mul (local.get $vomb2) (local.get $g)) (local.get $g))))
        (v128.store64_lane offset=196608 0 (local.get $i) (f32x4.demote_f64x2_zero (local.get $v)))
        ;; p ← p·decay − (step·m) / (√v / bc2 + eps)
        (local.set $p
          (f64x2.sub
            (f64x2.mul
              (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $i)))
              (local.get $vdecay))
            (f64x2.div
              (f64x2.mul (local.get $vstep) (local.get $m))
              (f64x2.add
                (f64x2.div (f64x2.sqrt (local.get $v)) (local.get $vbc2))
                (local.get $veps)))))
        (v128.store64_lane 0 (local.get $i) (f32x4.demote_f64x2_zero (local.get $p)))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $next))))
  (func (export "adamw_outer")
    ;; The protocol's outer step (src/protocol/outer.ts): the same, except v takes
    ;; (1−b2)·(g·g) and the update reads the stored (float32-rounded) m and v.
    (param $n i32)          ;; elements (the kernel rounds up to an even count)
    (param $scale f64)      ;; clip factor: g ← f32(g · scale), written back to g
    (param $b1 f64) (param $omb1 f64) (param $b2 f64) (param $omb2 f64)
    (param $decay f64) (param $step f64) (param $bc2 f64) (param $eps f64)
    (local $i i32) (local $end i32)
    (local $sc v128) (local $vb1 v128) (local $vomb1 v128) (local $vb2 v128)
    (local $vomb2 v128) (local $vdecay v128) (local $vstep v128) (local $vbc2 v128)
    (local $veps v128)
    (local $g v128) (local $m v128) (local $v v128) (local $p v128)
    (local.set $sc (f64x2.splat (local.get $scale)))
    (local.set $vb1 (f64x2.splat (local.get $b1)))
    (local.set $vomb1 (f64x2.splat (local.get $omb1)))
    (local.set $vb2 (f64x2.splat (local.get $b2)))
    (local.set $vomb2 (f64x2.splat (local.get $omb2)))
    (local.set $vdecay (f64x2.splat (local.get $decay)))
    (local.set $vstep (f64x2.splat (local.get $step)))
    (local.set $vbc2 (f64x2.splat (local.get $bc2)))
    (local.set $veps (f64x2.splat (local.get $eps)))
    ;; byte offset of the end of the p region, n rounded up to even
    (local.set $end (i32.shl (i32.and (i32.add (local.get $n) (i32.const 1)) (i32.const -2)) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        ;; g ← f32(g · scale)
        (local.set $g
          (f64x2.promote_low_f32x4
            (f32x4.demote_f64x2_zero
              (f64x2.mul
                (f64x2.promote_low_f32x4 (v128.load64_zero offset=65536 (local.get $i)))
                (local.get $sc)))))
        (v128.store64_lane offset=65536 0 (local.get $i) (f32x4.demote_f64x2_zero (local.get $g)))
        ;; m ← b1·m + (1−b1)·g
        (local.set $m
          (f64x2.add
            (f64x2.mul (local.get $vb1)
              (f64x2.promote_low_f32x4 (v128.load64_zero offset=131072 (local.get $i))))
            (f64x2.mul (local.get $vomb1) (local.get $g))))
        (local.set $m (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (local.get $m))))
        (v128.store64_lane offset=131072 0 (local.get $i) (f32x4.demote_f64x2_zero (local.get $m)))
        ;; v ← b2·v + (1−b2)·(g·g)
        (local.set $v
          (f64x2.add
            (f64x2.mul (local.get $vb2)
              (f64x2.promote_low_f32x4 (v128.load64_zero offset=196608 (local.get $i))))
            (f64x2.mul (local.get $vomb2) (f64x2.mul (local.get $g) (local.get $g)))))
        (local.set $v (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (local.get $v))))
        (v128.store64_lane offset=196608 0 (local.get $i) (f32x4.demote_f64x2_zero (local.get $v)))
        ;; p ← p·decay − (step·m) / (√v / bc2 + eps)
        (local.set $p
          (f64x2.sub
            (f64x2.mul
              (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $i)))
              (local.get $vdecay))
            (f64x2.div
              (f64x2.mul (local.get $vstep) (local.get $m))
              (f64x2.add
                (f64x2.div (f64x2.sqrt (local.get $v)) (local.get $vbc2))
                (local.get $veps)))))
        (v128.store64_lane 0 (local.get $i) (f32x4.demote_f64x2_zero (local.get $p)))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $next)))))
