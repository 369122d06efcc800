;; AdamW over four float32 arrays in the imported memory, two elements per iteration in
;; float64 lanes (f64x2), with exactly the operations and order of the TypeScript loop in
;; ../adamw_kernel.ts: every product, sum, quotient and square root is one IEEE float64
;; operation (WebAssembly never fuses or reassociates), and each result is rounded to
;; float32 only where the loop stores it. Build: deno run -A --no-lock scripts/build_wasm.ts
;; (the bytes are inlined in adamw_bytes.ts).
;;
;; The arrays are given by byte address: either a thread's staging buffers (a small
;; memory of its own; tensors are copied through it in chunks that stay in L2) or tensors
;; that live in a resident block (../resident.ts), updated where they are. n is rounded up
;; to an even count, so the element after an odd tail is read and written: harmless in a
;; staging buffer; on resident tensors the caller passes an even n and does the last one
;; with the loop. The memory is shared so that the
;; worker threads can run on a resident block, and because V8 copies into a shared
;; buffer at memcpy speed (`TypedArray.set` into unshared wasm memory was 3-4x slower).
(module
  (import "env" "memory" (memory 1 65536 shared))
  (func (export "adamw")
    (param $pa i32) (param $ga i32) (param $ma i32) (param $va i32) ;; byte addresses
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
    ;; bytes of n elements rounded up to an even count
    (local.set $end (i32.shl (i32.and (i32.add (local.get $n) (i32.const 1)) (i32.const -2)) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        ;; g ← f32(g · scale)
        (local.set $g
          (f64x2.promote_low_f32x4
            (f32x4.demote_f64x2_zero
              (f64x2.mul
                (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $ga) (local.get $i))))
                (local.get $sc)))))
        (v128.store64_lane 0 (i32.add (local.get $ga) (local.get $i)) (f32x4.demote_f64x2_zero (local.get $g)))
        ;; m ← b1·m + (1−b1)·g
        (local.set $m
          (f64x2.add
            (f64x2.mul (local.get $vb1)
              (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $ma) (local.get $i)))))
            (f64x2.mul (local.get $vomb1) (local.get $g))))
        (v128.store64_lane 0 (i32.add (local.get $ma) (local.get $i)) (f32x4.demote_f64x2_zero (local.get $m)))
        ;; v ← b2·v + ((1−b2)·g)·g
        (local.set $v
          (f64x2.add
            (f64x2.mul (local.get $vb2)
              (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $va) (local.get $i)))))
            (f64x2.mul (f64x2.mul (local.get $vomb2) (local.get $g)) (local.get $g))))
        (v128.store64_lane 0 (i32.add (local.get $va) (local.get $i)) (f32x4.demote_f64x2_zero (local.get $v)))
        ;; p ← p·decay − (step·m) / (√v / bc2 + eps)
        (local.set $p
          (f64x2.sub
            (f64x2.mul
              (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $pa) (local.get $i))))
              (local.get $vdecay))
            (f64x2.div
              (f64x2.mul (local.get $vstep) (local.get $m))
              (f64x2.add
                (f64x2.div (f64x2.sqrt (local.get $v)) (local.get $vbc2))
                (local.get $veps)))))
        (v128.store64_lane 0 (i32.add (local.get $pa) (local.get $i)) (f32x4.demote_f64x2_zero (local.get $p)))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $next))))
  (func (export "adamw_outer")
    ;; The protocol's outer step (src/protocol/outer.ts): the same, except v takes
    ;; (1−b2)·(g·g) and the update reads the stored (float32-rounded) m and v.
    (param $pa i32) (param $ga i32) (param $ma i32) (param $va i32) ;; byte addresses
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
    ;; bytes of n elements rounded up to an even count
    (local.set $end (i32.shl (i32.and (i32.add (local.get $n) (i32.const 1)) (i32.const -2)) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        ;; g ← f32(g · scale)
        (local.set $g
          (f64x2.promote_low_f32x4
            (f32x4.demote_f64x2_zero
              (f64x2.mul
                (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $ga) (local.get $i))))
                (local.get $sc)))))
        (v128.store64_lane 0 (i32.add (local.get $ga) (local.get $i)) (f32x4.demote_f64x2_zero (local.get $g)))
        ;; m ← b1·m + (1−b1)·g
        (local.set $m
          (f64x2.add
            (f64x2.mul (local.get $vb1)
              (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $ma) (local.get $i)))))
            (f64x2.mul (local.get $vomb1) (local.get $g))))
        (local.set $m (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (local.get $m))))
        (v128.store64_lane 0 (i32.add (local.get $ma) (local.get $i)) (f32x4.demote_f64x2_zero (local.get $m)))
        ;; v ← b2·v + (1−b2)·(g·g)
        (local.set $v
          (f64x2.add
            (f64x2.mul (local.get $vb2)
              (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $va) (local.get $i)))))
            (f64x2.mul (local.get $vomb2) (f64x2.mul (local.get $g) (local.get $g)))))
        (local.set $v (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (local.get $v))))
        (v128.store64_lane 0 (i32.add (local.get $va) (local.get $i)) (f32x4.demote_f64x2_zero (local.get $v)))
        ;; p ← p·decay − (step·m) / (√v / bc2 + eps)
        (local.set $p
          (f64x2.sub
            (f64x2.mul
              (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $pa) (local.get $i))))
              (local.get $vdecay))
            (f64x2.div
              (f64x2.mul (local.get $vstep) (local.get $m))
              (f64x2.add
                (f64x2.div (f64x2.sqrt (local.get $v)) (local.get $vbc2))
                (local.get $veps)))))
        (v128.store64_lane 0 (i32.add (local.get $pa) (local.get $i)) (f32x4.demote_f64x2_zero (local.get $p)))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $next)))))
