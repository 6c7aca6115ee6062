//! veriface's identity-document reader: MRZ (ICAO 9303) and PDF417/AAMVA, with OCR.
