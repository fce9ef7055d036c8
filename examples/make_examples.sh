#!/usr/bin/env bash
# Rebuilds the sample recordings in this folder from text with espeak-ng, sox and ffmpeg (Debian:
# `apt-get install -y espeak-ng sox ffmpeg`). Only needed to change them: the results are committed, and the
# tests make their other formats from these with PyAV, so CI needs none of these tools.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# say VOICE TEXT OUT: one utterance at 16 kHz mono
say() { espeak-ng -v "$1" -s 155 -w "$tmp/raw.wav" "$2"; sox "$tmp/raw.wav" -r 16000 -c 1 "$3"; }
gap() { sox -n -r 16000 -c 1 "$2" trim 0 "$1"; }

# A meeting with commitments, a deadline and an event; two voices; gaps of 1-3 s between turns.
lines=(
  "en-us|Good morning everyone, let's review the launch plan for the mobile app."
  "en-us+f3|Maria will send the updated design mockups by Friday."
  "en-us|We need to book the conference room for the client demo next Tuesday at ten."
  "en-us+f3|Please remember to update the budget spreadsheet before the end of the week."
  "en-us|I will call the supplier tomorrow about the delayed shipment."
  "en-us+f3|Thanks everyone, see you at the demo."
)
parts=()
i=0
for line in "${lines[@]}"; do
  say "${line%%|*}" "${line#*|}" "$tmp/m$i.wav"
  gap "$(( (i % 3) + 1 ))" "$tmp/g$i.wav"
  parts+=("$tmp/m$i.wav" "$tmp/g$i.wav")
  i=$((i + 1))
done
gap 1 "$tmp/lead.wav"
sox "$tmp/lead.wav" "${parts[@]}" "$tmp/meeting.wav"
printf '%s\n' "${lines[@]#*|}" > team-meeting.txt
ffmpeg -loglevel error -y -i "$tmp/meeting.wav" -c:a libopus -b:a 24k team-meeting.ogg

# A short voice memo, in several formats.
memo="Reminder to self. Buy milk and bread on the way home, and call the dentist to move the appointment to Thursday."
say en-us "$memo" "$tmp/memo.wav"
echo "$memo" > voice-memo.txt
ffmpeg -loglevel error -y -i "$tmp/memo.wav" -c:a libmp3lame -b:a 32k voice-memo.mp3
ffmpeg -loglevel error -y -i "$tmp/memo.wav" -c:a aac -b:a 32k voice-memo.m4a
ffmpeg -loglevel error -y -i "$tmp/memo.wav" -c:a flac voice-memo.flac
# raw PCM16 at 8 kHz: submit it with its sample rate (see README.md)
sox "$tmp/memo.wav" -r 8000 -t s16 -e signed -b 16 -c 1 voice-memo-8k.s16le

# Two conversations 150 s apart in one recording (more than the default 120 s gap): two conversations.
say en-us "Did you see the game last night? It went to overtime and the home team finally won." "$tmp/a.wav"
say en-us+f3 "Quick note for the project. The report is due on Monday, and Alex will review the numbers first." "$tmp/b.wav"
gap 150 "$tmp/long_gap.wav"
sox "$tmp/lead.wav" "$tmp/a.wav" "$tmp/long_gap.wav" "$tmp/b.wav" "$tmp/lead.wav" "$tmp/two.wav"
ffmpeg -loglevel error -y -i "$tmp/two.wav" -c:a libopus -b:a 16k two-conversations.webm

# Room tone without speech: the job succeeds with zero conversations.
sox -n -r 16000 -c 1 "$tmp/quiet.wav" synth 4 pinknoise vol 0.01
ffmpeg -loglevel error -y -i "$tmp/quiet.wav" -c:a pcm_s16le quiet-room.wav
ls -l
