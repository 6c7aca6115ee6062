//! veriface's identity-document reader: the machine readable zone (ICAO
//! 9303 TD1, TD2, TD3, MRV-A, MRV-B) read by OCR and verified by its check
//! digits, PDF417 barcodes with AAMVA driver-licence data, and the
//! cross-checks a verification session runs on them.
//!
//! A pure library: no HTTP, SQL or async. OCR runs Tesseract (the system
//! library, see `scripts/deps/20-tesseract.sh`) through a [`DocumentReader`]
//! that is `Send` but not `Sync`: keep one per worker thread.
//!
//! ```
//! use veriface_document::crosscheck::{cross_check, Reason};
//! use veriface_document::date::Date;
//! use veriface_document::mrz::parse;
//!
//! let mrz = parse(
//!     "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<\n\
//!      D231458907UTO7408122F1204159<<<<<<<6",
//! )
//! .unwrap();
//! assert!(mrz.is_valid());
//! let today = Date::new(2026, 1, 1).unwrap();
//! assert_eq!(cross_check(Some(&mrz), None, today), vec![Reason::DocumentExpired]);
//! ```

pub mod aamva;
pub mod barcode;
pub mod crosscheck;
pub mod date;
pub mod mrz;
pub mod ocr;
mod reading;

pub use reading::{read_document, DocumentReader, DocumentReading, ReadError, Timings};
