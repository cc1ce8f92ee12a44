#!/usr/bin/env python3
"""Writes the binary files of this SRC_DIR for the tests:
- usr/lib/R/site-library/janeaustenr/data/Rdata.rdb: an R lazy-load database
  (each object: a 4-byte big-endian length, then a zlib stream of R's XDR
  serialization) holding one character vector, a short invented "novel" with
  four chapters of quoted paragraphs;
- usr/share/sword/modules/texts/ztext/engWEB2015eb/nt.{bzs,bzv,bzz}: a SWORD
  zText testament (block index, verse index, zlib blocks of OSIS XML) of two
  invented chapters with quoted verses."""
import os, struct, zlib
lines = ["A TEST NOVEL", ""]
for ch in range(1, 5):
    lines += ["CHAPTER %d" % ch, "", "The rain had not stopped since morning.", ""]
    for k in range(4):
        lines += ['"Is it still raining, %s?" asked the %s visitor.' % (["Anne", "Jane", "Emma", "Fanny"][k], ["first", "second", "third", "last"][ch - 1]), ""]
        lines += ['"It is, and it will rain in chapter %d for a while yet," said she, %d times.' % (ch, k + 1), ""]
raw = b"X\n" + struct.pack(">iii", 3, 0x40201, 0x30500) + struct.pack(">i", 5) + b"UTF-8"
raw += struct.pack(">ii", 16, len(lines))
for s in lines:
    b = s.encode()
    raw += struct.pack(">ii", 9 | 1 << 15, len(b)) + b
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "usr/lib/R/site-library/janeaustenr/data/Rdata.rdb"), "wb") as f:
    f.write(struct.pack(">I", len(raw)) + zlib.compress(raw, 9))

# zText: one block per chapter; verse entries (block, offset, size), size 0 for empty slots
chapters = []
for ch in (1, 2):
    verses = ['<chapter n="%d" osisID="Test.%d" sID="Test.%d"/>' % (ch, ch, ch), "The travellers came to a well."]
    for k in range(5):
        verses.append('<w lemma="x">The</w> %s one said, \u201cDrink, friend %d.\u201d<note>a note</note>' % (["first", "second", "third", "fourth", "fifth"][k], k + ch))
        verses.append('He answered, \u201cThank you, for the %d time.\u201d' % (k + 10 * ch))
    chapters.append(verses)
bzs = bzv = bzz = b""
bzv += struct.pack("<IIH", 0, 0, 0)  # the module's empty first slot
for b, verses in enumerate(chapters):
    raw = b""
    for v in verses:
        data = v.encode()
        bzv += struct.pack("<IIH", b, len(raw), len(data))
        raw += data
    z = zlib.compress(raw, 9)
    bzs += struct.pack("<III", len(bzz), len(z), len(raw))
    bzz += z
mod = os.path.join(here, "usr/share/sword/modules/texts/ztext/engWEB2015eb")
os.makedirs(mod, exist_ok=True)
for ext, data in (("bzs", bzs), ("bzv", bzv), ("bzz", bzz)):
    with open(os.path.join(mod, "nt." + ext), "wb") as f:
        f.write(data)
