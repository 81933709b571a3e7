#!/usr/bin/env python3
"""A pjsua2 (pjproject 2.15, PyPI `pjsua2-python`) softphone for acd's interop tests.

As an agent it registers, auto-answers, sends a sine, records what it hears to a WAV file,
and optionally puts the caller on hold and back (a re-INVITE each way, as pjsua2 offers
telephone-event at 16000 and 8000 Hz); as a caller it dials. It prints one line per event on
stdout ("registered", "incoming", "connected", "held", "resumed", "dtmf 5", "ended") and exits
after --seconds or when the call ends.
"""
import argparse
import sys
import time

import pjsua2 as pj


def say(*words):
    print(" ".join(str(w) for w in words), flush=True)


class Call(pj.Call):
    def __init__(self, acc, phone, call_id=pj.PJSUA_INVALID_ID):
        super().__init__(acc, call_id)
        self.phone = phone
        self.connected = False
        self.ended = False

    def onCallState(self, prm):
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and not self.connected:
            self.connected = True
            say("connected")
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.ended = True
            say("ended", info.lastStatusCode)

    def onCallMediaState(self, prm):
        info = self.getInfo()
        for i, m in enumerate(info.media):
            if m.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            if m.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            media = self.getAudioMedia(i)
            self.phone.tone.startTransmit(media)
            if self.phone.recorder is not None:
                media.startTransmit(self.phone.recorder)

    def onDtmfDigit(self, prm):
        say("dtmf", prm.digit)


class Account(pj.Account):
    def __init__(self, phone):
        super().__init__()
        self.phone = phone

    def onRegState(self, prm):
        if prm.code == 200 and self.getInfo().regIsActive:
            say("registered")

    def onIncomingCall(self, prm):
        call = Call(self, self.phone, prm.callId)
        self.phone.call = call
        say("incoming")
        op = pj.CallOpParam()
        op.statusCode = 200
        call.answer(op)


class Phone:
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, help="acd's SIP address, host:port")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", default="")
    ap.add_argument("--port", type=int, required=True, help="our SIP port")
    ap.add_argument("--register", action="store_true")
    ap.add_argument("--dial", help="a number to call")
    ap.add_argument("--tone", type=int, default=1000)
    ap.add_argument("--record", help="a WAV file for what we hear")
    ap.add_argument("--codec", help="the only codec, e.g. PCMU/8000")
    ap.add_argument("--hold-at", type=float, help="seconds after connecting to hold")
    ap.add_argument("--resume-after", type=float, default=1.0)
    ap.add_argument("--dtmf", help="digits to press (RFC 4733) once connected")
    ap.add_argument("--dtmf-at", type=float, default=1.0, help="seconds after connecting")
    ap.add_argument("--require-100rel-timer", action="store_true",
                    help="as a carrier: Require: 100rel and timer, Session-Expires 90")
    ap.add_argument("--seconds", type=float, default=20)
    a = ap.parse_args()

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.logConfig.level = 3
    cfg.logConfig.consoleLevel = 3
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    ep.libInit(cfg)
    tcfg = pj.TransportConfig()
    tcfg.port = a.port
    tcfg.boundAddress = "127.0.0.1"
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    if a.codec:
        for c in ep.codecEnum2():
            ep.codecSetPriority(c.codecId, 255 if c.codecId.startswith(a.codec) else 0)

    phone = Phone()
    phone.call = None
    phone.tone = pj.ToneGenerator()
    phone.tone.createToneGenerator(8000, 1)
    tone = pj.ToneDesc()
    tone.freq1 = a.tone
    tone.freq2 = 0
    tone.on_msec = 10000
    tone.off_msec = 0
    tone.volume = 0
    tones = pj.ToneDescVector()
    tones.append(tone)
    phone.tone.play(tones, True)
    phone.recorder = None
    if a.record:
        phone.recorder = pj.AudioMediaRecorder()
        phone.recorder.createRecorder(a.record)

    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{a.user}@{a.server}"
    if a.register:
        acfg.regConfig.registrarUri = f"sip:{a.server}"
        acfg.regConfig.timeoutSec = 300
    # Media on loopback too (else pjsua2 names the host's first address in its SDP).
    acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    acfg.mediaConfig.transportConfig.publicAddress = "127.0.0.1"
    acfg.mediaConfig.transportConfig.port = a.port + 10
    acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", a.user, 0, a.password))
    if a.require_100rel_timer:
        acfg.callConfig.prackUse = pj.PJSUA_100REL_MANDATORY
        acfg.callConfig.timerUse = pj.PJSUA_SIP_TIMER_REQUIRED
        acfg.callConfig.timerSessExpiresSec = 90
        acfg.callConfig.timerMinSESec = 90
    acc = Account(phone)
    acc.create(acfg)

    if a.dial:
        call = Call(acc, phone)
        phone.call = call
        call.makeCall(f"sip:{a.dial}@{a.server}", pj.CallOpParam(True))

    start = time.time()
    connected_at = None
    held = resumed = pressed = False
    while time.time() - start < a.seconds:
        ep.libHandleEvents(20)
        call = phone.call
        if call is None:
            continue
        if call.connected and connected_at is None:
            connected_at = time.time()
        if a.hold_at is not None and connected_at is not None:
            since = time.time() - connected_at
            if not held and since >= a.hold_at:
                held = True
                call.setHold(pj.CallOpParam(True))
                say("held")
            elif held and not resumed and since >= a.hold_at + a.resume_after:
                resumed = True
                op = pj.CallOpParam(True)
                op.opt.flag = pj.PJSUA_CALL_UNHOLD
                call.reinvite(op)
                say("resumed")
        if a.dtmf and not pressed and connected_at is not None:
            if time.time() - connected_at >= a.dtmf_at:
                pressed = True
                call.dialDtmf(a.dtmf)
                say("pressed", a.dtmf)
        if call.ended:
            break

    call = phone.call
    if call is not None and not call.ended:
        try:
            call.hangup(pj.CallOpParam())
        except pj.Error:
            pass
        for _ in range(50):
            ep.libHandleEvents(20)
    phone.call = None
    del call
    acc.shutdown()
    for _ in range(10):
        ep.libHandleEvents(20)
    phone.recorder = None
    ep.libDestroy()
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
