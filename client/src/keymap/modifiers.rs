//! [`Modifiers`]: the set of modifiers held for a key query.
//!
//! What it is: a small bit set over the eight core modifiers that every
//! XKB keymap has (Shift, Lock, Control, Mod1 to Mod5), with the usual
//! aliases (Alt = Mod1, Logo = Mod4, AltGr = Mod5), combined with `|`.
//! [`Modifiers::mask`] turns it into the `xkb_mod_mask_t` of one keymap,
//! by looking each modifier's index up by name. What it is not: a
//! modifier *state* (depressed, latched, locked), nor a parser of
//! modifier names typed by a user.
//!
//! # Implementation notes
//!
//! Core modifiers are the ones a `wl_keyboard.modifiers` event carries in
//! practice; virtual modifiers (`LevelThree`, `NumLock`, `Alt`) are
//! bound to them by the keymap (xkeyboard-config puts `LevelThree` on
//! Mod5, which is why [`Modifiers::ALT_GR`] is Mod5). The bits are ours, in
//! X11 order; the keymap's own index of each is looked up, never assumed.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

use xkbcommon::xkb;

/// A set of held modifiers, for [`crate::ReceivedKeymap::key`].
///
/// ```
/// use waypass_client::Modifiers;
///
/// let mods = Modifiers::SHIFT | Modifiers::ALT_GR;
/// assert!(mods.contains(Modifiers::MOD5));
/// assert_eq!(mods.names(), ["Shift", "Mod5"]);
/// assert!(Modifiers::NONE.is_empty());
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Modifiers(u8);

/// The xkbcommon name of each bit, in bit order.
const NAMES: [&str; 8] = [
    xkb::MOD_NAME_SHIFT,
    xkb::MOD_NAME_CAPS,
    xkb::MOD_NAME_CTRL,
    "Mod1",
    "Mod2",
    "Mod3",
    "Mod4",
    "Mod5",
];

impl Modifiers {
    /// No modifier held.
    pub const NONE: Modifiers = Modifiers(0);
    /// Shift.
    pub const SHIFT: Modifiers = Modifiers(1 << 0);
    /// Lock (Caps Lock, as a held modifier).
    pub const LOCK: Modifiers = Modifiers(1 << 1);
    /// Control.
    pub const CTRL: Modifiers = Modifiers(1 << 2);
    /// Mod1, Alt in xkeyboard-config's keymaps.
    pub const MOD1: Modifiers = Modifiers(1 << 3);
    /// Mod2, Num Lock in xkeyboard-config's keymaps.
    pub const MOD2: Modifiers = Modifiers(1 << 4);
    /// Mod3 (unused by xkeyboard-config's common layouts).
    pub const MOD3: Modifiers = Modifiers(1 << 5);
    /// Mod4, Super/Logo in xkeyboard-config's keymaps.
    pub const MOD4: Modifiers = Modifiers(1 << 6);
    /// Mod5, Level3 (AltGr) in xkeyboard-config's keymaps.
    pub const MOD5: Modifiers = Modifiers(1 << 7);
    /// Alt: [`Modifiers::MOD1`].
    pub const ALT: Modifiers = Modifiers::MOD1;
    /// Super/Logo: [`Modifiers::MOD4`].
    pub const LOGO: Modifiers = Modifiers::MOD4;
    /// AltGr, the third level: [`Modifiers::MOD5`].
    pub const ALT_GR: Modifiers = Modifiers::MOD5;

    /// The modifier called `name`, case-insensitively: an xkbcommon name
    /// (`Shift`, `Lock`, `Control`, `Mod1`...`Mod5`) or a usual alias
    /// (`Ctrl`, `Caps`, `Alt`, `AltGr`, `Level3`, `Super`, `Logo`,
    /// `NumLock`). `None` for anything else.
    ///
    /// ```
    /// use waypass_client::Modifiers;
    ///
    /// assert_eq!(Modifiers::from_name("altgr"), Some(Modifiers::MOD5));
    /// assert_eq!(Modifiers::from_name("Control"), Some(Modifiers::CTRL));
    /// assert_eq!(Modifiers::from_name("Hyper"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Modifiers> {
        let lower = name.to_ascii_lowercase();
        let alias = match lower.as_str() {
            "ctrl" => Some(Modifiers::CTRL),
            "caps" | "capslock" => Some(Modifiers::LOCK),
            "alt" => Some(Modifiers::ALT),
            "numlock" => Some(Modifiers::MOD2),
            "super" | "logo" => Some(Modifiers::LOGO),
            "altgr" | "level3" | "levelthree" => Some(Modifiers::ALT_GR),
            _ => None,
        };
        alias.or_else(|| {
            NAMES
                .iter()
                .position(|n| n.eq_ignore_ascii_case(name))
                .map(|bit| Modifiers(1 << bit))
        })
    }

    /// The union of two sets (also `a | b`).
    pub const fn union(self, other: Modifiers) -> Modifiers {
        Modifiers(self.0 | other.0)
    }

    /// Whether every modifier of `other` is in `self`.
    pub const fn contains(self, other: Modifiers) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no modifier is held.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The xkbcommon names of the modifiers held (`Shift`, `Lock`,
    /// `Control`, `Mod1`...), in bit order.
    pub fn names(self) -> Vec<&'static str> {
        NAMES
            .iter()
            .enumerate()
            .filter(|&(bit, _)| self.0 & (1 << bit) != 0)
            .map(|(_, &name)| name)
            .collect()
    }

    /// This set as a modifier mask of `keymap`. A modifier the keymap does
    /// not define contributes nothing.
    pub fn mask(self, keymap: &xkb::Keymap) -> xkb::ModMask {
        self.names()
            .into_iter()
            .map(|name| keymap.mod_get_index(name))
            .filter(|&index| index != xkb::MOD_INVALID && index < xkb::ModMask::BITS)
            .fold(0, |mask, index| mask | (1 << index))
    }
}

impl BitOr for Modifiers {
    type Output = Modifiers;
    fn bitor(self, other: Modifiers) -> Modifiers {
        self.union(other)
    }
}

impl BitOrAssign for Modifiers {
    fn bitor_assign(&mut self, other: Modifiers) {
        *self = self.union(other);
    }
}

impl fmt::Debug for Modifiers {
    /// `Modifiers(Shift | Mod5)`, or `Modifiers(NONE)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.names();
        if names.is_empty() {
            write!(f, "Modifiers(NONE)")
        } else {
            write!(f, "Modifiers({})", names.join(" | "))
        }
    }
}
