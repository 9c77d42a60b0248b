"""Make the encrypted / packed model fixtures in tests/fixtures/crypto/ and record what the real library does.

Run with this repository's Python (it uses ``megenginelite.crypto`` / ``megenginelite.packed`` to build the files);
the real MegEngine 1.13.0 ``megenginelite`` is run in subprocesses to load every case::

    python tools/make_crypto_fixtures.py                     # real Python from ../shared/tools/real-megengine
    python tools/make_crypto_fixtures.py --real /path/to/python3.10

The wheel ships no encryption or packing tool (``aes_encrypt.sh``, ``rc4_encryptor``, ``pack_model_and_info.py``
and ``ModelPacker`` live only in the source tree), so the files are made here:

* AES_default: the procedure of the original's ``aes_encrypt.sh`` (IV | ``openssl enc -aes-256-cbc`` | 8-byte
  big-endian length) with a fixed IV; when ``openssl`` is on PATH the bytes are also produced with it and
  checked to be identical.
* RC4_default / SIMPLE_FAST_RC4_default: ``crypto.rc4_encrypt`` / ``sfrc4_encrypt`` (deterministic; they match
  the original's ``rc4_encryptor`` byte for byte, see tests/format/test_crypto.py).
* packed models: ``tools/lite_pack.py`` (the original's FlatBuffers layout).

For each case the real library loads the file (in its own process: keys are process-global), runs the reference
inputs of the plain model and reports the error or the output difference, the input layouts, the thread count
and the packed extra info.  Everything goes to tests/fixtures/crypto/manifest.json; files of cases marked
``store`` are kept there (the rest are rebuilt by the tests from the recipe in the manifest).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from megenginelite import crypto  # noqa: E402
from tools.lite_pack import pack  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
OUT = FIXTURES / "crypto"
AES_IV = bytes.fromhex("f0e1d2c3b4a5968778695a4b3c2d1e0f")
CUSTOM_AES_KEY = bytes(range(0xA0, 0xC0))
CUSTOM_RC4_KEY = (0x0123456789ABCDEF).to_bytes(8, "little") + (0xFEDCBA9876543210).to_bytes(8, "little")

# ------------------------------------------------------------------------------------------------ real-library probe

PROBE = r'''
import ctypes, json, sys, traceback
case = json.loads(sys.argv[1])
out = {}
try:
    from megenginelite import (LiteConfig, LiteExtraConfig, LiteGlobal, LiteNetwork, decryption_func)
    import megenginelite.base as base
    if case.get("action") == "make_cache":
        net = LiteNetwork()
        LiteGlobal.set_persistent_cache(case["cache"])
        net.load(case["model"])
        from megenginelite import LiteAlgoSelectStrategy as S
        net.set_network_algo_policy(S.LITE_ALGO_PROFILE | S.LITE_ALGO_REPRODUCIBLE)
        ref = np.load(case["npz"])
        for name in net.get_all_input_name():
            net.get_io_tensor(name).set_data_by_copy(ref["input:" + name])
        net.forward(); net.wait()
        LiteGlobal.dump_persistent_cache(case["cache"])
        print(json.dumps({"ok": True})); sys.exit(0)
    for step in case.get("global", []):
        if step[0] == "update_key":
            LiteGlobal.update_decryption_key(step[1], list(bytes.fromhex(step[2])))
        elif step[0] == "register_xor":
            @decryption_func
            def xor(in_arr, key_arr, out_arr):
                if out_arr is None:
                    return in_arr.size
                out_arr[:] = in_arr ^ key_arr[0]
                return out_arr.size
            globals()["_keep"] = xor
            LiteGlobal.register_decryption_and_key(step[1], xor, list(bytes.fromhex(step[2])))
    config = LiteConfig()
    if case.get("cryption"):
        config.bare_model_cryption_name = case["cryption"]
    net = LiteNetwork(config)
    if case.get("disable_model_config"):
        net.extra_configure(LiteExtraConfig(True))
    try:
        net.load(case["file"])
    except Exception as exc:
        out["loaded"] = False
        out["error_type"] = type(exc).__name__
        out["error"] = str(exc)
        print(json.dumps(out)); sys.exit(0)
    out["loaded"] = True
    ref = np.load(case["npz"])
    out["threads_number"] = net.threads_number
    out["cpu_inplace"] = bool(net.is_cpu_inplace_mode())
    layouts = {}
    for name in net.get_all_input_name():
        t = net.get_io_tensor(name)
        layouts[name] = list(t.layout.shapes)
        x = ref["input:" + name]
        shape = list(t.layout.shapes)
        if list(x.shape) != shape:
            x = np.ascontiguousarray(np.broadcast_to(x, shape))
        t.set_data_by_copy(x)
    out["input_layouts"] = layouts
    net.forward(); net.wait()
    diffs, shapes = {}, {}
    for name in net.get_all_output_name():
        y = net.get_io_tensor(name).to_numpy()
        want = ref["output:" + name]
        shapes[name] = list(y.shape)
        diffs[name] = float(np.abs(y - np.broadcast_to(want, y.shape)).max()) if y.size else 0.0
    out["output_shapes"] = shapes
    out["max_abs_diff"] = diffs
    lib = base._lib.lib
    fn = lib.LITE_get_model_extra_info
    fn.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_int)]
    info = ctypes.c_char_p(); size = ctypes.c_int()
    if fn(net._network, ctypes.byref(info), ctypes.byref(size)) == 0:
        out["extra_info"] = ctypes.string_at(info, size.value).decode("utf-8", "replace") if size.value else ""
except SystemExit:
    raise
except BaseException as exc:
    out["probe_error"] = traceback.format_exc()
print(json.dumps(out))
'''


def real_python(arg: str | None) -> str:
    if arg:
        return arg
    tool = ROOT.parent / "shared" / "tools" / "real-megengine"
    # run it outside the repository: the real package refuses to import when this repo's megenginelite
    # (its egg-info) is visible on sys.path
    return subprocess.run([str(tool)], capture_output=True, text=True, check=True,
                          cwd=tempfile.gettempdir()).stdout.strip()


def probe(py: str, case: dict, workdir: Path) -> dict:
    script = workdir / "probe.py"
    if not script.exists():
        script.write_text(PROBE)
    p = subprocess.run([py, "-I", str(script), json.dumps(case)], capture_output=True, text=True,
                       cwd=str(workdir), timeout=600)
    lines = [line for line in p.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"crashed": True, "returncode": p.returncode, "stderr_tail": p.stderr[-2000:]}
    return json.loads(lines[-1])


# ------------------------------------------------------------------------------------------------ the cases


def two_io_info(**overrides) -> dict:
    info = {
        "name": "two_in_two_out",
        "valid": True,
        "version": "1.13.0",
        "has_compression": False,
        "backend": "MGE",
        "device": {"type": "CPU", "number_threads": 2, "enable_inplace_model": False},
        "options": {"var_sanity_check_first_run": False, "graph_opt_level": 2, "record_level": 0},
        "IO": {
            "inputs": [{"name": "a", "io_type": "value", "is_host": True, "dtype": "float32",
                        "shape": {"dim0": 1, "dim1": 8}}],
            "outputs": [{"name": "sum_out", "io_type": "value", "is_host": True, "dtype": "float32",
                         "shape": {"dim0": 1, "dim1": 8, "dim2": 0, "dim3": 0}}],
        },
        "extra_info": {"zeta": "last", "author": "make_crypto_fixtures", "list": [1, 2.5, "x"]},
    }
    info.update(overrides)
    return info


def json_bytes(obj) -> bytes:
    """JSON text whose length is not a multiple of 8.

    (RC4/SIMPLE_FAST_RC4 decryption leaves the zero padding and 8 garbage bytes after the text; the original's
    JSON parser stops at the first NUL, so a text of a multiple of 8 bytes is followed directly by garbage and
    fails to parse: see the packed_rc4_info_len_mod8_* cases.)
    """
    text = json.dumps(obj, indent=1).encode()
    return text + b"\n" if len(text) % 8 == 0 else text


def build_cases(cache_blob: bytes | None) -> list[dict]:
    """Every case: how to build the file (``build``), how to load it (``load``) and whether to keep the file."""
    r18 = (FIXTURES / "resnet18_small.mge").read_bytes()
    two = (FIXTURES / "two_in_two_out.mge").read_bytes()
    cases: list[dict] = []

    def add(name, data, *, model, cipher, key=None, load=None, store=False, recipe=None, note=""):
        cases.append({"name": name, "file": f"{name}.bin" if not name.endswith((".mge", ".lite")) else name,
                      "data": data, "model": model, "cipher": cipher,
                      "key": None if key is None else key.hex(), "load": load or {}, "store": store,
                      "recipe": recipe or {}, "note": note})

    aes = crypto.aes_encrypt(r18, iv=AES_IV)
    rc4 = crypto.rc4_encrypt(r18)
    sfrc4 = crypto.sfrc4_encrypt(r18)
    add("resnet18_small.aes.mge", aes, model="resnet18_small", cipher="AES_default", key=crypto.AES_DEFAULT_KEY,
        load={"cryption": "AES_default"}, store=True, recipe={"iv": AES_IV.hex()},
        note="aes_encrypt.sh procedure, fixed IV")
    add("resnet18_small.rc4.mge", rc4, model="resnet18_small", cipher="RC4_default", key=crypto.RC4_DEFAULT_KEY,
        load={"cryption": "RC4_default"}, store=True)
    add("resnet18_small.sfrc4.mge", sfrc4, model="resnet18_small", cipher="SIMPLE_FAST_RC4_default",
        key=crypto.SIMPLE_FAST_RC4_DEFAULT_KEY, load={"cryption": "SIMPLE_FAST_RC4_default"}, store=True)
    # custom keys, installed with update_decryption_key
    add("two_in_two_out.aes_custom.mge", crypto.aes_encrypt(two, CUSTOM_AES_KEY, iv=AES_IV), model="two_in_two_out",
        cipher="AES_default", key=CUSTOM_AES_KEY, store=True, recipe={"iv": AES_IV.hex()},
        load={"cryption": "AES_default", "global": [["update_key", "AES_default", CUSTOM_AES_KEY.hex()]]})
    add("two_in_two_out.rc4_custom.mge", crypto.rc4_encrypt(two, CUSTOM_RC4_KEY), model="two_in_two_out",
        cipher="RC4_default", key=CUSTOM_RC4_KEY, store=True,
        load={"cryption": "RC4_default", "global": [["update_key", "RC4_default", CUSTOM_RC4_KEY.hex()]]})
    add("two_in_two_out.sfrc4_custom.mge", crypto.sfrc4_encrypt(two, CUSTOM_RC4_KEY), model="two_in_two_out",
        cipher="SIMPLE_FAST_RC4_default", key=CUSTOM_RC4_KEY, store=True,
        load={"cryption": "SIMPLE_FAST_RC4_default",
              "global": [["update_key", "SIMPLE_FAST_RC4_default", CUSTOM_RC4_KEY.hex()]]})
    # failures of bare models (files rebuilt by the tests: same bytes as the stored ones or the plain model)
    two_aes = crypto.aes_encrypt(two, iv=AES_IV)
    two_rc4 = crypto.rc4_encrypt(two)
    two_sf = crypto.sfrc4_encrypt(two)
    add("err_aes_wrong_key", two_aes, model="two_in_two_out", cipher="AES_default", key=crypto.AES_DEFAULT_KEY,
        load={"cryption": "AES_default", "global": [["update_key", "AES_default", CUSTOM_AES_KEY.hex()]]},
        recipe={"iv": AES_IV.hex()})
    add("err_rc4_wrong_key", two_rc4, model="two_in_two_out", cipher="RC4_default", key=crypto.RC4_DEFAULT_KEY,
        load={"cryption": "RC4_default", "global": [["update_key", "RC4_default", CUSTOM_RC4_KEY.hex()]]})
    add("err_sfrc4_wrong_key", two_sf, model="two_in_two_out", cipher="SIMPLE_FAST_RC4_default",
        key=crypto.SIMPLE_FAST_RC4_DEFAULT_KEY,
        load={"cryption": "SIMPLE_FAST_RC4_default",
              "global": [["update_key", "SIMPLE_FAST_RC4_default", CUSTOM_RC4_KEY.hex()]]})
    add("err_rc4_file_as_sfrc4", two_rc4, model="two_in_two_out", cipher="RC4_default", key=crypto.RC4_DEFAULT_KEY,
        load={"cryption": "SIMPLE_FAST_RC4_default"})
    add("err_sfrc4_file_as_rc4", two_sf, model="two_in_two_out", cipher="SIMPLE_FAST_RC4_default",
        key=crypto.SIMPLE_FAST_RC4_DEFAULT_KEY, load={"cryption": "RC4_default"})
    add("err_plain_as_aes", two, model="two_in_two_out", cipher="NONE", load={"cryption": "AES_default"})
    add("err_plain_as_rc4", two, model="two_in_two_out", cipher="NONE", load={"cryption": "RC4_default"})
    add("err_plain_as_sfrc4", two, model="two_in_two_out", cipher="NONE",
        load={"cryption": "SIMPLE_FAST_RC4_default"})
    add("err_unknown_method", two, model="two_in_two_out", cipher="NONE", load={"cryption": "NOPE"})
    add("user_xor_func", bytes(b ^ 0x5A for b in two), model="two_in_two_out", cipher="xor_test", key=b"\x5a",
        load={"cryption": "xor_test", "global": [["register_xor", "xor_test", "5a"]]},
        note="LiteGlobal.register_decryption_and_key with a @decryption_func (broken adapter in 1.13)")

    # ---- packed models
    def encrypt(method, data):
        if method == "AES_default":
            return crypto.aes_encrypt(data, iv=AES_IV)
        if method == "RC4_default":
            return crypto.rc4_encrypt(data)
        if method == "SIMPLE_FAST_RC4_default":
            return crypto.sfrc4_encrypt(data)
        return data

    def add_packed(fname, model_bytes, model_name, *, store=False, load=None, note="", **kw):
        model_enc = encrypt(kw.get("model_decryption_method"), model_bytes)
        if kw.get("info") is not None:
            kw = {**kw, "info": encrypt(kw.get("info_decryption_method"), kw["info"])}
        blob = pack(model_enc, **kw)
        recipe = {k: (v if not isinstance(v, bytes) else {"hex": v.hex()} if len(v) <= 64 else {"len": len(v)})
                  for k, v in kw.items()}
        cases.append({"name": fname, "file": fname, "data": blob, "model": model_name, "cipher": "packed",
                      "key": None, "load": load or {}, "store": store, "recipe": recipe, "note": note})

    info = json_bytes(two_io_info())
    add_packed("two_in_two_out.packed_none.lite", two, "two_in_two_out", store=True, name="two_in_two_out",
               info=info, note="NONE/NONE, LITE_default info: threads 2, IO config, extra_info")
    add_packed("two_in_two_out.packed_rc4.lite", two, "two_in_two_out", store=True, name="two_in_two_out",
               info=info, model_decryption_method="RC4_default", info_decryption_method="RC4_default")
    add_packed("two_in_two_out.packed_aes.lite", two, "two_in_two_out", store=True, name="two_in_two_out",
               info=info, model_decryption_method="AES_default", info_decryption_method="AES_default")
    add_packed("two_in_two_out.packed_sfrc4.lite", two, "two_in_two_out", store=True, name="two_in_two_out",
               info=info, model_decryption_method="SIMPLE_FAST_RC4_default",
               info_decryption_method="SIMPLE_FAST_RC4_default")
    add_packed("resnet18_small.packed_rc4.lite", r18, "resnet18_small", store=True, name="resnet18_small",
               info=json_bytes({"name": "resnet18_small", "valid": True, "version": "1.13.0",
                                "device": {"type": "CPU"}}),
               model_decryption_method="RC4_default", info_decryption_method="RC4_default",
               note="like upstream test_packed_model_rc4.lite")
    add_packed("two_in_two_out.packed_noinfo.lite", two, "two_in_two_out", store=True, name="two_in_two_out",
               note="no ModelInfo table")
    add_packed("two_in_two_out.packed_pytool.lite", two, "two_in_two_out", store=True, name="two_in_two_out",
               info=info, info_cache_parse_method=None, is_fast_run_cache=None,
               note="header as pack_model_and_info.py writes it (no cache fields)")
    add_packed("two_in_two_out.packed_batch3.lite", two, "two_in_two_out", store=True, name="two_in_two_out",
               info=json_bytes(two_io_info(IO={"inputs": [
                   {"name": "a", "shape": {"dim0": 3, "dim1": 8}},
                   {"name": "b", "shape": {"dim0": 3, "dim1": 8}}]})),
               note="IO config: inputs of batch 3")
    add_packed("two_in_two_out.packed_batch3_disabled.lite", two, "two_in_two_out", name="two_in_two_out",
               info=json_bytes(two_io_info(IO={"inputs": [
                   {"name": "a", "shape": {"dim0": 3, "dim1": 8}},
                   {"name": "b", "shape": {"dim0": 3, "dim1": 8}}]})),
               load={"disable_model_config": True}, note="same file, LiteExtraConfig(True)")
    add_packed("two_in_two_out.packed_inplace.lite", two, "two_in_two_out", name="two_in_two_out",
               info=json_bytes(two_io_info(device={"type": "CPU", "number_threads": 3,
                                                   "enable_inplace_model": True})),
               note="number_threads 3 + enable_inplace_model")
    add_packed("two_in_two_out.packed_inplace_disabled.lite", two, "two_in_two_out", name="two_in_two_out",
               info=json_bytes(two_io_info(device={"type": "CPU", "number_threads": 3,
                                                   "enable_inplace_model": True})),
               load={"disable_model_config": True}, note="same, LiteExtraConfig(True)")
    if cache_blob is not None:
        add_packed("two_in_two_out.packed_cache.lite", two, "two_in_two_out", store=True, name="two_in_two_out",
                   info=info, algo_policy=cache_blob, note="fast-run cache dumped by the real library")
    add_packed("packed_valid_false.lite", two, "two_in_two_out", name="whatever",
               info=json_bytes({"valid": False, "name": "other"}))
    add_packed("packed_future_version.lite", two, "two_in_two_out", name="two_in_two_out",
               info=json_bytes(two_io_info(version="9.1.2")))
    for n in (7, 8, 9):
        # RC4-decrypted info keeps zero padding + 8 garbage bytes: JSON of a multiple of 8 bytes has no NUL
        # after it (the JSON parser stops at NUL)
        doc = {"name": "two_in_two_out", "valid": True, "version": "1.13.0"}
        text = json.dumps(doc, separators=(",", ":"))
        text = text + " " * ((n - len(text)) % 8)
        add_packed(f"packed_rc4_info_len_mod8_{len(text.encode()) % 8}.lite", two, "two_in_two_out",
                   name="two_in_two_out", info=text.encode(), info_decryption_method="RC4_default",
                   note=f"info JSON of {len(text.encode())} bytes, RC4-encrypted")
    add_packed("packed_device_cuda.lite", two, "two_in_two_out", name="two_in_two_out",
               info=json_bytes(two_io_info(device={"type": "CUDA", "device_id": 0})),
               note="device CUDA from the info on a machine without GPU")
    add_packed("packed_has_compression.lite", two, "two_in_two_out", name="two_in_two_out",
               info=json_bytes(two_io_info(has_compression=True)))
    add_packed("packed_options_int_bool.lite", two, "two_in_two_out", name="two_in_two_out",
               info=json_bytes(two_io_info(options={"var_sanity_check_first_run": 0})),
               note="a bool option given as a number")
    add_packed("packed_number_threads_float.lite", two, "two_in_two_out", name="two_in_two_out",
               info=json_bytes(two_io_info(device={"type": "CPU", "number_threads": 2.7})))
    add_packed("err_packed_name_mismatch.lite", two, "two_in_two_out", name="packed_name",
               info=json_bytes(two_io_info(name="json_name")))
    add_packed("err_packed_no_valid.lite", two, "two_in_two_out", name="two_in_two_out",
               info=json_bytes({"name": "two_in_two_out", "version": "1.13.0"}))
    add_packed("err_packed_valid_int.lite", two, "two_in_two_out", name="two_in_two_out",
               info=json_bytes({"name": "two_in_two_out", "version": "1.13.0", "valid": 1}))
    add_packed("err_packed_bad_json.lite", two, "two_in_two_out", name="two_in_two_out", info=b"{not json")
    add_packed("err_packed_bad_device.lite", two, "two_in_two_out", name="two_in_two_out",
               info=json_bytes(two_io_info(device={"type": "TPU"})))
    add_packed("err_packed_bad_dtype.lite", two, "two_in_two_out", name="two_in_two_out",
               info=json_bytes(two_io_info(IO={"inputs": [{"name": "a", "dtype": "float64"}]})))
    add_packed("err_packed_bad_iotype.lite", two, "two_in_two_out", name="two_in_two_out",
               info=json_bytes(two_io_info(IO={"inputs": [{"name": "a", "io_type": "tensor"}]})))
    add_packed("err_packed_unknown_parser.lite", two, "two_in_two_out", name="two_in_two_out", info=info,
               info_parse_method="MY_parser")
    add_packed("err_packed_unknown_cache_parser.lite", two, "two_in_two_out", name="two_in_two_out", info=info,
               algo_policy=b"\0\0\0\0", info_cache_parse_method="MY_cache")
    add_packed("err_packed_cache_not_fastrun.lite", two, "two_in_two_out", name="two_in_two_out", info=info,
               algo_policy=b"\0\0\0\0", is_fast_run_cache=False)
    add_packed("packed_cache_not_fastrun_disabled.lite", two, "two_in_two_out", name="two_in_two_out", info=info,
               algo_policy=b"\0\0\0\0", is_fast_run_cache=False, load={"disable_model_config": True})
    add_packed("err_packed_empty_model.lite", b"", "two_in_two_out", name="two_in_two_out", info=info)
    add_packed("err_packed_unknown_model_cipher.lite", two, "two_in_two_out", name="two_in_two_out", info=info,
               model_decryption_method="NOPE")
    add_packed("packed_ignores_bare_cryption.lite", two, "two_in_two_out", name="two_in_two_out", info=info,
               load={"cryption": "AES_default"}, note="config.bare_model_cryption_name is ignored for packed models")
    return cases


def make_cache(py: str, workdir: Path) -> bytes | None:
    cache = workdir / "algo.cache"
    res = probe(py, {"action": "make_cache", "model": str(FIXTURES / "two_in_two_out.mge"),
                     "npz": str(FIXTURES / "two_in_two_out.npz"), "cache": str(cache)}, workdir)
    if not res.get("ok") or not cache.exists():
        print("could not make an algo cache:", res, file=sys.stderr)
        return None
    return cache.read_bytes()


def check_openssl(plain: bytes, expected: bytes) -> str:
    if not shutil.which("openssl"):
        return "openssl not found: not cross-checked"
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in", Path(tmp) / "out"
        src.write_bytes(plain)
        subprocess.run(["openssl", "enc", "-e", "-aes-256-cbc", "-in", str(src), "-out", str(dst),
                        "-K", crypto.AES_DEFAULT_KEY.hex(), "-iv", AES_IV.hex()], check=True)
        ref = AES_IV + dst.read_bytes() + len(plain).to_bytes(8, "big")
    if ref != expected:
        raise SystemExit("AES fixture differs from the openssl (aes_encrypt.sh) procedure")
    return "identical to the aes_encrypt.sh procedure run with openssl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", help="Python with the real MegEngine 1.13.0")
    args = ap.parse_args()
    py = real_python(args.real)
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    plain_sha = {}
    for model in ("resnet18_small", "two_in_two_out"):
        plain_sha[model] = hashlib.sha256((FIXTURES / f"{model}.mge").read_bytes()).hexdigest()
        # the references travel with the encrypted files (the top-level fixtures may be regenerated)
        shutil.copyfile(FIXTURES / f"{model}.npz", OUT / f"{model}.ref.npz")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cache_blob = make_cache(py, work)
        cases = build_cases(cache_blob)
        manifest = []
        for case in cases:
            path = work / case["file"]
            path.write_bytes(case["data"])
            load = dict(case["load"])
            res = probe(py, {**load, "file": str(path), "npz": str(FIXTURES / f"{case['model']}.npz")}, work)
            entry = {k: case[k] for k in ("name", "model", "cipher", "key", "load", "recipe", "note")}
            entry["file"] = case["file"] if case["store"] else None
            entry["size"] = len(case["data"])
            entry["sha256"] = hashlib.sha256(case["data"]).hexdigest()
            entry["plain_sha256"] = plain_sha[case["model"]]
            entry["plain_size"] = (FIXTURES / f"{case['model']}.mge").stat().st_size
            entry["reference"] = f"{case['model']}.ref.npz"
            entry["real"] = res
            if case["name"] == "resnet18_small.aes.mge":
                entry["openssl"] = check_openssl((FIXTURES / "resnet18_small.mge").read_bytes(), case["data"])
            if case["store"]:
                OUT.mkdir(parents=True, exist_ok=True)
                (OUT / case["file"]).write_bytes(case["data"])
            manifest.append(entry)
            status = "loaded" if res.get("loaded") else f"error: {res.get('error') or res}"
            print(f"{case['name']:50s} {status}"[:200])
        if cache_blob is not None:
            OUT.mkdir(parents=True, exist_ok=True)
            (OUT / "two_in_two_out.algo_cache").write_bytes(cache_blob)
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
