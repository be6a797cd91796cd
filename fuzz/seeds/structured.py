#!/usr/bin/env python3
"""Writes the seeds of the structure-aware targets (`pair`, `server_commands`).

Their inputs are decoded by `arbitrary` 1.x: integers little-endian, `bool` the low bit of a
byte, an enum variant a u32 `v` with `(v * variants) >> 32 == index`, `Option` a bool then the
value, every `Vec` (the last field's included) a continuation byte before each element. This
script encodes scripted scenarios that way, so that the campaign starts from sessions that log
in, transfer and meet each fault, instead of waiting for the fuzzer to find a login.

Run from the repository root: python3 fuzz/seeds/structured.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def variant(index, count):
    v = ((index << 32) + count - 1) // count
    assert (v * count) >> 32 == index
    return struct.pack("<I", v)


def u8(v):
    return bytes([v])


def u16(v):
    return struct.pack("<H", v)


def u32(v):
    return struct.pack("<I", v)


def boolean(v):
    return b"\x01" if v else b"\x00"


def vec(items):
    return b"".join(b"\x01" + item for item in items) + b"\x00"


def byte_vec(data):
    return vec([bytes([b]) for b in data])


def option(value):
    return b"\x00" if value is None else b"\x01" + value


# ---- pair -----------------------------------------------------------------------------------
STEPS = ["Login", "Download", "Upload", "List", "Rename", "Delete", "Size", "Mkdir", "Ccc",
         "Protection", "Abort", "Quit", "Run", "Settle", "Advance", "Stall", "CutControl",
         "Inject"]


def step(name, *fields):
    return variant(STEPS.index(name), len(STEPS)) + b"".join(fields)


def login(good=True):
    return step("Login", boolean(good))


def download(file, rest=None):
    return step("Download", u8(file), option(None if rest is None else u16(rest)))


def upload(length, cut=False):
    return step("Upload", u16(length), boolean(cut))


def settle(time=True):
    return step("Settle", boolean(time))


def scenario(steps, max_chunk=1400, active=False, sizes=(3000, 0, 700), drop_server=False,
             drop_client=False, after_auth=None, after_234=None, delay=0, tape=b""):
    return (u16(max_chunk) + boolean(active) + b"".join(u16(s) for s in sizes)
            + boolean(drop_server) + boolean(drop_client)
            + option(None if after_auth is None else byte_vec(after_auth))
            + option(None if after_234 is None else byte_vec(after_234))
            + u8(delay) + vec(steps) + byte_vec(tape))


PAIR = {
    "session": scenario([login(), settle(False), download(0), upload(2500), step("List"),
                         step("Size", u8(2)), step("Rename"), step("Delete"), settle(False),
                         step("Quit")]),
    "active_byte_by_byte": scenario([login(), download(2, 100), upload(300)], max_chunk=1,
                                    active=True),
    "drop_server_close_notify": scenario([login(), download(0), download(2)], drop_server=True),
    "drop_client_close_notify": scenario([login(), upload(1000), upload(0)], drop_client=True),
    "stalled_reply": scenario([login(), settle(False), step("Stall", boolean(True)), download(0),
                               step("Advance", u32(5_000)), settle(False),
                               step("Stall", boolean(False))]),
    "cut_mid_download": scenario([login(), download(0), step("Run", u16(40)),
                                  step("CutControl")], max_chunk=200),
    "cut_mid_upload": scenario([login(), upload(6000), step("Run", u16(60)),
                                step("CutControl")], max_chunk=300),
    "injected_after_234": scenario([login(), download(1)], after_234=b"230 fake\r\n"),
    "injected_after_auth": scenario([login(), download(1)], after_auth=b"USER x\r\n"),
    "injected_in_tls": scenario([login(), settle(False),
                                 step("Inject", boolean(True), byte_vec(b"\x17\x03\x03\x00\x05hello")),
                                 download(0)]),
    "ccc_then_clear": scenario([login(), step("Protection", boolean(False)), step("Ccc"),
                                upload(100), download(2), step("List")]),
    "abort_upload": scenario([login(), upload(7000, cut=True), step("Run", u16(80)),
                              step("Abort", u8(0)), settle()]),
    "slow_network": scenario([login(), download(0), upload(2000)], delay=200, max_chunk=512),
    "bad_login_then_good": scenario([login(False), download(0), login(), download(0)]),
}

# ---- server_commands ------------------------------------------------------------------------
COMMANDS = ["AuthTls", "AuthSsl", "AuthOther", "Pbsz", "Prot", "Ccc", "Rest", "RestJunk", "Rnfr",
            "Rnto", "User", "Pass", "Pasv", "Epsv", "EpsvAll", "Port", "Eprt", "Retr", "Stor",
            "Appe", "Stou", "List", "Nlst", "Mlsd", "Mlst", "Abor", "Quit", "Noop", "Feat",
            "Opts", "Type", "Mode", "Stru", "Size", "Mdtm", "Cwd", "Cdup", "Pwd", "Dele", "Mkd",
            "Rmd", "Syst", "Stat", "Rein", "Raw"]
NAMES = ["File", "Dir", "Missing", "Dots", "Long", "Empty"]
ACTIONS = ["Send", "Data", "Answer", "Advance", "ControlEof"]


def name(n):
    return variant(NAMES.index(n), len(NAMES))


def send(command, *fields, pipelined=False):
    return (variant(0, len(ACTIONS)) + variant(COMMANDS.index(command), len(COMMANDS))
            + b"".join(fields) + boolean(pipelined))


def data(payload, end=True, close_notify=True):
    return variant(1, len(ACTIONS)) + byte_vec(payload) + boolean(end) + boolean(close_notify)


ANSWER = variant(2, len(ACTIONS))


def script(actions, grant=True, require_tls=True, require_private=True, allow_ccc=True):
    return (boolean(grant) + boolean(require_tls) + boolean(require_private)
            + boolean(allow_ccc) + vec(actions))


SECURE_LOGIN = [send("AuthTls"), send("Pbsz", u8(0)), send("Prot", u8(0)),
                send("User", boolean(True)), send("Pass", boolean(True)), ANSWER]

COMMANDS_SEEDS = {
    "secure_transfers": script(SECURE_LOGIN + [
        send("Epsv"), send("Retr", name("File")), ANSWER,
        send("Epsv"), send("Stor", name("File")), ANSWER, data(b"uploaded bytes"),
        send("Rest", u32(5)), send("Epsv"), send("Retr", name("File")), ANSWER,
        send("Rnfr", name("File")), send("Rnto", name("Dir")), ANSWER,
        send("Epsv"), send("Mlsd"), ANSWER, send("Quit")]),
    "ccc_and_clear": script(SECURE_LOGIN + [
        send("Ccc"), send("Pasv"), send("List"), ANSWER, send("Noop"), send("Quit")]),
    "pipelined_auth": script([send("AuthTls", pipelined=True), send("User", boolean(True)),
                              send("Pass", boolean(True)), ANSWER]),
    "plaintext_refused": script([send("User", boolean(True)), send("Pass", boolean(True)),
                                 ANSWER, send("Pbsz", u8(0)), send("Prot", u8(1)),
                                 send("Epsv"), send("Retr", name("File")), ANSWER],
                                require_tls=False, require_private=False),
    "truncated_upload": script(SECURE_LOGIN + [
        send("Epsv"), send("Stor", name("File")), ANSWER,
        data(b"no close_notify", close_notify=False), send("Abor")]),
    "prot_before_pbsz": script([send("AuthTls"), send("Prot", u8(0)), send("Pbsz", u8(2)),
                                send("Rnto", name("File")), send("Rest", u32(9)),
                                send("Stor", name("Dots")), send("Port", boolean(True)),
                                send("Eprt", boolean(True)), send("EpsvAll"), send("Pasv"),
                                send("Feat"), send("Rein")]),
}


def write(target, seeds):
    folder = os.path.join(HERE, target)
    os.makedirs(folder, exist_ok=True)
    for seed_name, body in seeds.items():
        with open(os.path.join(folder, seed_name), "wb") as f:
            f.write(body)


if __name__ == "__main__":
    write("pair", PAIR)
    write("server_commands", COMMANDS_SEEDS)
