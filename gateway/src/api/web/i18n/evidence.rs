//! The texts of the grid worker's deadlines, assignee, data check and evidence (notes and
//! photos), in Chinese (the default) and English: `lang.t(...)` of the parent table's style,
//! through [`t`].

use super::Lang;

/// The text of `m` in `lang`.
pub(crate) const fn t(lang: Lang, m: Ev) -> &'static str {
    match lang {
        Lang::Zh => m.zh(),
        Lang::En => m.en(),
    }
}

macro_rules! messages {
    ($($key:ident => $zh:literal, $en:literal;)*) => {
        /// A text of the evidence and deadline parts of the pages.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Ev {
            $(#[doc = $en] $key,)*
        }

        impl Ev {
            /// Every message (the tests check that none is empty).
            #[cfg(test)]
            pub(crate) const ALL: &[Self] = &[$(Self::$key,)*];

            const fn zh(self) -> &'static str {
                match self { $(Self::$key => $zh,)* }
            }

            const fn en(self) -> &'static str {
                match self { $(Self::$key => $en,)* }
            }
        }
    };
}

messages! {
    AcknowledgeBy => "确认期限", "Acknowledge by";
    RectifyBy => "整改期限", "Rectify by";
    Overdue => "已超期", "overdue";
    Deadline => "期限", "Deadline";
    Assignee => "负责人", "Assignee";
    Unassigned => "未指派", "unassigned";
    Photo => "照片", "Photo";
    PhotoHelp => "JPEG 或 PNG，拍摄整改后的现场", "JPEG or PNG: the site after the repair";
    Evidence => "整改记录", "Evidence";
    DataCheck => "数据核验", "Data check";
    CheckVerified => "读数已低于设定值，可核实", "readings below the set-point: may be verified";
    CheckNotEnded => "报警尚未结束", "the alarm has not ended";
    CheckTooRecent => "恢复时间不足，稍后可核实", "ended too recently: verifiable later";
    CheckNoReadings => "恢复后没有读数", "no readings since it ended";
    CheckAbove => "读数仍高于核验限值", "readings still above the limit";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_has_both_languages() {
        for m in Ev::ALL {
            assert!(
                !t(Lang::Zh, *m).is_empty() && !t(Lang::En, *m).is_empty(),
                "{m:?}"
            );
        }
    }
}
