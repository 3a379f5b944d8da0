//! thisUpdate of a new CRL when the wall clock may have moved back (an NTP step, an operator's
//! correction, a restored VM snapshot).
//!
//! Two promises hold whatever the clock does (RFC 5280 §5.1.2.4, §5.2.3):
//! - a CRL's thisUpdate is never later than the clock's now (a relying party whose clock is
//!   right would see a CRL "from the future" and reject it);
//! - a new CRL never has a thisUpdate earlier than the CRLs it follows: thisUpdate moves forward
//!   with the CRL number, which one writer increments whatever the clock says (the numbers come
//!   from the store's counter, never from the time: a CRL number is never reused).
//!
//! Normally thisUpdate is `now − backdate`. When the clock was set back below the last
//! published thisUpdate, the last thisUpdate is reused if it is not in the future (the backdate
//! leaves that room); if the clock went back further, no CRL is built until the clock has caught
//! up: the CRLs already published stay valid — as judged by the same clock, even longer.

use crate::model::UnixTime;

/// thisUpdate for a CRL built at `now`, after CRLs whose latest thisUpdate is `previous`: see
/// the module. `Err(previous)` when `previous` is later than `now` (the clock was set back
/// further than the backdate): build nothing until the clock reaches it.
pub fn this_update(
    now: UnixTime,
    backdate: i64,
    previous: Option<UnixTime>,
) -> Result<UnixTime, UnixTime> {
    let wanted = now.minus(backdate);
    match previous {
        Some(p) if p > now => Err(p),
        Some(p) => Ok(wanted.max(p)),
        None => Ok(wanted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: UnixTime = UnixTime(1_800_000_000);

    #[test]
    fn normally_now_minus_the_backdate() {
        assert_eq!(this_update(T, 300, None), Ok(T.minus(300)));
        assert_eq!(this_update(T, 300, Some(T.minus(3600))), Ok(T.minus(300)));
    }

    #[test]
    fn a_clock_set_back_within_the_backdate_keeps_the_last_this_update() {
        // Published at T (thisUpdate T − 300), then the clock goes back 200 s.
        let previous = T.minus(300);
        let now = T.minus(200);
        let got = this_update(now, 300, Some(previous)).expect("room in the backdate");
        assert_eq!(got, previous, "never lower than the one it replaces");
        assert!(got <= now, "never in the future");
    }

    #[test]
    fn a_clock_set_back_an_hour_builds_nothing_until_it_catches_up() {
        let previous = T.minus(300);
        for back in [3600, 600, 301] {
            let now = T.minus(back);
            assert_eq!(
                this_update(now, 300, Some(previous)),
                Err(previous),
                "{back}"
            );
        }
        // Caught up: from the moment previous ≤ now, thisUpdate never goes below it.
        assert_eq!(this_update(previous, 300, Some(previous)), Ok(previous));
        assert_eq!(
            this_update(T.plus(10), 300, Some(previous)),
            Ok(T.minus(290))
        );
    }
}
