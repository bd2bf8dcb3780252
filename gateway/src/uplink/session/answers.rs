//! The centre's commands (type 89, 90, 91) and reads (61–68, 81–88), answered from what the
//! session has reported.

use firegrid_protocols::gb26875::adu::{self, Adu, Object, Status, System};
use firegrid_protocols::gb26875::frame;

use super::{Output, Session, uitd_status};
use crate::model::UnixMs;
use crate::uplink::time::{tag_of, unix_ms_of};

impl Session {
    /// A control command: `Some` when carried out (then confirmed).
    pub(super) fn control(
        &mut self,
        a: &Adu<'_>,
        now: UnixMs,
        out: &mut Vec<Output>,
    ) -> Option<()> {
        match (a.kind, a.objects().next()?) {
            (adu::kind::SYNC_CLOCK, Object::SyncClock { time }) => {
                let centre = unix_ms_of(time, self.cfg.utc_offset_min)?;
                let offset = i64::try_from(centre).ok()? - i64::try_from(now).ok()?;
                out.push(Output::ClockOffset(offset));
                Some(())
            }
            (adu::kind::DUTY_CHECK, Object::DutyCheck { timeout_min }) => {
                out.push(Output::DutyCheck { timeout_min });
                Some(())
            }
            (adu::kind::INIT_UITD, _) => {
                out.push(Output::Initialised);
                let status = uitd_status(self.own_status(), tag_of(now, self.cfg.utc_offset_min));
                let serial = self.take_serial();
                self.transient.push_back((serial, status));
                Some(())
            }
            _ => None,
        }
    }

    /// A read: the response's ADU, or `None` (denied).
    pub(super) fn read(&self, a: &Adu<'_>, now: UnixMs) -> Option<Vec<u8>> {
        let t = tag_of(now, self.cfg.utc_offset_min);
        let sys = self.cfg.system;
        let mine = |s: &System| *s == sys;
        let mut objects: Vec<Object<'_>> = Vec::new();
        let config = format!("firegrid {}.{}", self.cfg.version.0, self.cfg.version.1);
        let config_text = crate::uplink::text::encode(&config, 255);
        let kind = match a.kind {
            adu::kind::READ_UITD_STATUS => {
                objects.push(Object::UitdStatus {
                    status: self.own_status(),
                    extra: &[],
                    time: t,
                });
                adu::kind::UITD_STATUS
            }
            adu::kind::READ_UITD_OPERATIONS => adu::kind::UITD_OPERATION,
            adu::kind::READ_UITD_VERSION => {
                let (major, minor) = self.cfg.version;
                objects.push(Object::UitdVersion { major, minor });
                adu::kind::UITD_VERSION
            }
            adu::kind::READ_UITD_CONFIG => {
                objects.push(Object::UitdConfig {
                    description: &config_text,
                });
                adu::kind::UITD_CONFIG
            }
            adu::kind::READ_UITD_TIME => {
                objects.push(Object::UitdTime { time: t });
                adu::kind::UITD_TIME
            }
            adu::kind::READ_SYSTEM_STATUS => {
                for o in a.objects() {
                    if let Object::ReadSystem { system } = o
                        && mine(&system)
                    {
                        let mut status = Status::NORMAL;
                        for (_, s, _, _) in self.components.values() {
                            status |= s.0 & (Status::FIRE | Status::FAULT);
                        }
                        objects.push(Object::SystemStatus {
                            system,
                            status: Status(status),
                            time: t,
                        });
                    }
                }
                adu::kind::SYSTEM_STATUS
            }
            adu::kind::READ_COMPONENT_STATUS => {
                for o in a.objects() {
                    if let Object::ReadComponent { system, address } = o
                        && mine(&system)
                        && let Some((component, status, description, time)) =
                            self.components.get(&address)
                    {
                        objects.push(Object::ComponentStatus {
                            system,
                            component: *component,
                            status: *status,
                            description: *description,
                            time: *time,
                        });
                    }
                }
                adu::kind::COMPONENT_STATUS
            }
            adu::kind::READ_ANALOG_VALUE => {
                for o in a.objects() {
                    if let Object::ReadComponent { system, address } = o
                        && mine(&system)
                    {
                        for ((_, analog), (component, value, time)) in
                            self.analogs.range((address, 0)..=(address, u8::MAX))
                        {
                            objects.push(Object::AnalogValue {
                                system,
                                component: *component,
                                analog: *analog,
                                value: *value,
                                time: *time,
                            });
                        }
                    }
                }
                objects.truncate(63);
                adu::kind::ANALOG_VALUE
            }
            adu::kind::READ_OPERATIONS => adu::kind::OPERATION,
            adu::kind::READ_SOFTWARE_VERSION => {
                let (major, minor) = self.cfg.version;
                objects.push(Object::SoftwareVersion {
                    system: sys,
                    major,
                    minor,
                });
                adu::kind::SOFTWARE_VERSION
            }
            adu::kind::READ_SYSTEM_CONFIG => {
                objects.push(Object::SystemConfig {
                    system: sys,
                    description: &config_text,
                });
                adu::kind::SYSTEM_CONFIG
            }
            adu::kind::READ_COMPONENT_CONFIG => {
                for o in a.objects() {
                    if let Object::ReadComponent { system, address } = o
                        && mine(&system)
                        && let Some((component, _, description, _)) = self.components.get(&address)
                    {
                        objects.push(Object::ComponentConfig {
                            system,
                            component: *component,
                            description: *description,
                        });
                    }
                }
                adu::kind::COMPONENT_CONFIG
            }
            adu::kind::READ_SYSTEM_TIME => {
                objects.push(Object::SystemTime {
                    system: sys,
                    time: t,
                });
                adu::kind::SYSTEM_TIME
            }
            _ => return None,
        };
        let mut buf = [0u8; frame::MAX_ADU];
        let n = adu::encode(kind, &objects, &mut buf).ok()?;
        Some(buf[..n].to_vec())
    }
}
