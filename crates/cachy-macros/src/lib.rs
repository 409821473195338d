//! `#[cachy::cached]`: memoize a function's results in a cache store. See the `cachy` crate's
//! docs of [`cached`] for the options.

#![warn(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, FnArg, ItemFn, Lit, Meta, Pat, ReturnType, Token, Type};

/// Options of `#[cached(...)]`.
#[derive(Default)]
struct Options {
    store: Option<String>,
    key: Option<String>,
    minutes: Option<Expr>,
    ttl: Option<Expr>,
    manager: Option<Expr>,
    version: Option<Expr>,
    include_self: bool,
    skip: Vec<syn::Ident>,
    /// Resilience options, by name (`fail_safe`, `soft_timeout`, ...), with their values.
    resilience: Vec<(syn::Ident, Expr)>,
}

/// The `#[cached]` options that are `RememberOptions` methods of the same name.
const RESILIENCE: &[&str] = &[
    "fail_safe",
    "fail_safe_throttle",
    "soft_timeout",
    "hard_timeout",
    "eager_refresh",
    "jitter",
    "distributed",
];

impl Parse for Options {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut options = Options::default();
        for meta in Punctuated::<Meta, Token![,]>::parse_terminated(input)? {
            match &meta {
                Meta::Path(path) if path.is_ident("include_self") => options.include_self = true,
                Meta::List(list) if list.path.is_ident("skip") => {
                    let names = list
                        .parse_args_with(Punctuated::<syn::Ident, Token![,]>::parse_terminated)?;
                    options.skip.extend(names);
                }
                Meta::NameValue(pair) => {
                    let name = pair
                        .path
                        .get_ident()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    let string = || match &pair.value {
                        Expr::Lit(lit) => match &lit.lit {
                            Lit::Str(s) => Ok(s.value()),
                            _ => Err(syn::Error::new(
                                pair.value.span(),
                                format!("`{name}` takes a string"),
                            )),
                        },
                        _ => Err(syn::Error::new(
                            pair.value.span(),
                            format!("`{name}` takes a string"),
                        )),
                    };
                    match name.as_str() {
                        "store" => options.store = Some(string()?),
                        "key" => options.key = Some(string()?),
                        "minutes" => options.minutes = Some(pair.value.clone()),
                        "ttl" => options.ttl = Some(pair.value.clone()),
                        "manager" => options.manager = Some(pair.value.clone()),
                        "version" => options.version = Some(pair.value.clone()),
                        resilience if RESILIENCE.contains(&resilience) => {
                            options.resilience.push((
                                syn::Ident::new(resilience, pair.path.span()),
                                pair.value.clone(),
                            ))
                        }
                        _ => return Err(unknown(&meta)),
                    }
                }
                _ => return Err(unknown(&meta)),
            }
        }
        Ok(options)
    }
}

fn unknown(meta: &Meta) -> syn::Error {
    syn::Error::new(
        meta.span(),
        "expected `store = \"name\"`, `key = \"prefix\"`, `minutes = N`, `ttl = duration`, \
         `manager = expr`, `version = N`, `fail_safe = duration`, `fail_safe_throttle = duration`, \
         `soft_timeout = duration`, `hard_timeout = duration`, `eager_refresh = fraction`, \
         `jitter = share`, `distributed = (lock_ttl, wait)`, \
         `skip(argument, ...)` or `include_self`",
    )
}

/// Whether `expr` uses `self`.
fn mentions_self(expr: &Expr) -> bool {
    mentions(quote!(#expr), &["self"])
}

/// Whether `tokens` contain one of the identifiers `names`.
fn mentions(tokens: Tokens, names: &[&str]) -> bool {
    tokens.into_iter().any(|token| match token {
        proc_macro2::TokenTree::Ident(ident) => names.iter().any(|name| ident == name),
        proc_macro2::TokenTree::Group(group) => mentions(group.stream(), names),
        _ => false,
    })
}

/// Whether the function returns a `Result` (only `Ok` values are then cached).
fn returns_result(output: &ReturnType) -> bool {
    match output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(path) => path
                .path
                .segments
                .last()
                .is_some_and(|s| s.ident == "Result"),
            _ => false,
        },
        ReturnType::Default => false,
    }
}

/// Memoize the function's results; see `cachy::cached` for the documentation.
#[proc_macro_attribute]
pub fn cached(attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = syn::parse_macro_input!(attr as Options);
    let function = syn::parse_macro_input!(item as ItemFn);
    expand(options, function)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

fn expand(options: Options, function: ItemFn) -> syn::Result<Tokens> {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    let mut key_args: Vec<Tokens> = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                if options.include_self {
                    key_args.push(quote_spanned!(receiver.span()=> &self));
                }
            }
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(ident) if options.skip.contains(&ident.ident) => {}
                Pat::Ident(ident) => {
                    let name = &ident.ident;
                    key_args.push(
                        quote_spanned!(typed.ty.span()=> ::cachy::memoize::key_argument(&#name)),
                    );
                }
                other => {
                    return Err(syn::Error::new(
                        other.span(),
                        "#[cached] needs named arguments (`name: Type`): they form the cache key",
                    ));
                }
            },
        }
    }
    for skipped in &options.skip {
        let is_argument = sig.inputs.iter().any(|input| {
            matches!(input, FnArg::Typed(typed)
                if matches!(&*typed.pat, Pat::Ident(ident) if ident.ident == *skipped))
        });
        if !is_argument {
            return Err(syn::Error::new(
                skipped.span(),
                format!("`skip({skipped})`: the function has no argument `{skipped}`"),
            ));
        }
    }
    let name = sig.ident.to_string();
    let prefix = match &options.key {
        Some(key) => quote!(#key),
        None => quote!(::core::concat!(::core::module_path!(), "::", #name)),
    };
    let store = match &options.store {
        Some(store) => quote!(::core::option::Option::Some(#store)),
        None => quote!(::core::option::Option::None),
    };
    if let (Some(_), Some(ttl)) = (&options.minutes, &options.ttl) {
        return Err(syn::Error::new(
            ttl.span(),
            "give `minutes` or `ttl`, not both: they set the same lifetime",
        ));
    }
    let lifetime = match (&options.minutes, &options.ttl) {
        (Some(minutes), _) => Some(quote!(.minutes(#minutes))),
        (_, Some(ttl)) => Some(quote!(.expiry(#ttl))),
        _ => None,
    };
    let resilient = !options.resilience.is_empty();
    let output = &sig.output;
    let result = returns_result(output);
    if let Some((name, _)) = options
        .resilience
        .iter()
        .find(|(name, _)| name == "hard_timeout")
        && !result
    {
        return Err(syn::Error::new(
            name.span(),
            "`hard_timeout` needs a function returning `Result`: a function that cannot fail \
             has no error to give when it is abandoned",
        ));
    }
    let knobs = options.resilience.iter().map(|(name, value)| {
        if name == "distributed" {
            // `distributed = (lock_ttl, wait)`: the method takes the two.
            quote!(.#name((#value).0, (#value).1))
        } else {
            quote!(.#name(#value))
        }
    });
    let with_options = resilient.then(|| {
        quote!(.with_options(::cachy::RememberOptions::new(::core::time::Duration::ZERO) #(#knobs)*))
    });
    // Waiting callers get copies of a failed call's error when its type is `Clone`: chosen by
    // method resolution on the concrete return type.
    let share_errors = |ret: &Type| {
        quote! {
            .sharing_errors({
                use ::cachy::memoize::{ShareCloneErrors as _, ShareNoErrors as _};
                (&&::cachy::memoize::ErrorOf::<#ret>::NEW).sharing()
            })
        }
    };
    let returned = match output {
        ReturnType::Type(_, ty) if result => Some(&**ty),
        _ => None,
    };
    let version = options
        .version
        .as_ref()
        .map(|version| quote!(.version(#version)));
    let minutes = quote!(#lifetime #with_options #version);
    let memoizer = match &options.manager {
        // An expression of the instance (`self.cache`) is evaluated on every call: each
        // instance may have its own manager.
        Some(manager) if mentions_self(manager) => {
            let share_errors = returned.map(share_errors);
            quote! {
                let __cachy_memoizer = ::std::borrow::Cow::<::cachy::Memoizer>::Owned(
                    ::cachy::Memoizer::resolve(::core::option::Option::Some(&*&(#manager)), #store, #prefix)
                        #minutes #share_errors
                );
            }
        }
        // Any other expression is evaluated once, in an item of its own, so it cannot depend
        // on the arguments, and a function that builds a manager does not build one (with
        // empty stores) per call.
        _ => {
            let manager = match &options.manager {
                Some(manager) => quote!(::core::option::Option::Some(&*&(#manager))),
                None => quote!(::core::option::Option::None),
            };
            // The item cannot name the function's generics or `Self`: a return type using
            // them leaves errors unshared.
            let share_errors = returned
                .filter(|ty| {
                    sig.generics.params.is_empty() && !mentions(quote!(#ty), &["Self", "impl"])
                })
                .map(share_errors);
            quote! {
                fn __cachy_resolve() -> ::cachy::Memoizer {
                    ::cachy::Memoizer::resolve(#manager, #store, #prefix) #minutes #share_errors
                }
                static __CACHY_MEMOIZER: ::std::sync::OnceLock<::cachy::Memoizer> =
                    ::std::sync::OnceLock::new();
                let __cachy_memoizer = ::cachy::Memoizer::resolve_once(&__CACHY_MEMOIZER, __cachy_resolve);
            }
        }
    };
    let body = if sig.asyncness.is_some() {
        let call = match (result, resilient) {
            (true, false) => quote!(call_result),
            (false, false) => quote!(call),
            (true, true) => quote!(call_result_resilient),
            (false, true) => quote!(call_resilient),
        };
        quote! {
            __cachy_memoizer
                .#call(__cachy_key, move || async move #block)
                .await
        }
    } else {
        let call = match (result, resilient) {
            (true, false) => quote!(call_result_blocking),
            (false, false) => quote!(call_blocking),
            (true, true) => quote!(call_result_resilient_blocking),
            (false, true) => quote!(call_resilient_blocking),
        };
        let ret = match output {
            ReturnType::Type(_, ty) => quote!(#ty),
            ReturnType::Default => quote!(()),
        };
        quote! {
            __cachy_memoizer.#call(__cachy_key, move || -> #ret #block)
        }
    };
    // The path in the key keeps functions that share a `key` prefix apart.
    let path = quote!(::core::concat!(::core::module_path!(), "::", #name));
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            #memoizer
            let __cachy_key = __cachy_memoizer.key(&(#path, #(#key_args,)*));
            #body
        }
    })
}
