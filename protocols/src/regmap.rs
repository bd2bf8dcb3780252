//! Modbus register maps (see the regmap helper).
